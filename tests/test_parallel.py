"""Data-parallel training under MindSpore's real launcher: `msrun` with 2 CPU workers (the CPU
collective backend over TCP on localhost), against one process with the same global batch."""
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SHIPPED_MNIST

from mindgan.data import load_mnist
from mindgan.parallel import Workers, env_rank, is_scheduler, launched_by_msrun
from mindgan.training import TrainConfig, train

MSRUN = shutil.which("msrun") or (shutil.which("msrun", path=str(Path(sys.executable).parent)))
needs_msrun = pytest.mark.skipif(MSRUN is None, reason="msrun is not installed with this MindSpore "
                                                       "(it ships in the mindspore wheel's console scripts)")
REPO = Path(__file__).resolve().parents[1]
RUN = ["--subset", "320", "--batch_size", "32", "--epochs", "4", "--device_target", "CPU",
       "--no_progress", "--seed", "3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env():
    # msrun runs its command's word "python" from PATH: make that this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "GLOG_v": "3", "PYTHONPATH": str(REPO), "PATH": path}


def msrun(log_dir, *flags, wait=True):
    """`msrun` with 2 local workers running `python -m mindgan.train FLAGS`."""
    cmd = [MSRUN, "--worker_num", "2", "--local_worker_num", "2", "--master_port", str(free_port()),
           "--log_dir", str(log_dir), "--join", "True", "python", "-m", "mindgan.train", *flags]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if wait:
        proc.wait(timeout=300)
    return proc


def losses(run_dir):
    with open(run_dir / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r[k]) for k in ("loss_d", "loss_g", "d_real", "d_fake")] for r in rows]), rows


def worker_output(log_dir, rank):
    """The lines a worker printed (MindSpore's own [INFO]/[WARNING] lines left out)."""
    text = (Path(log_dir) / f"worker_{rank}.log").read_text(errors="replace")
    return [line for line in text.splitlines() if line and not line.startswith("[")]


def test_workers_slice_the_global_batch_in_rank_order():
    batch = np.arange(2 * 8 * 3).reshape(2, 8, 3)
    parts = [Workers(r, 4).local(batch, axis=1) for r in range(4)]
    assert all(p.shape == (2, 2, 3) for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), batch)
    assert Workers().main and not Workers(1, 2).main and Workers().any(True) and not Workers().any(False)


def test_msrun_roles_come_from_its_environment(monkeypatch):
    for name in ("MS_ROLE", "MS_WORKER_NUM", "RANK_ID"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_msrun() and env_rank() == 0
    monkeypatch.setenv("MS_WORKER_NUM", "2")
    monkeypatch.setenv("MS_ROLE", "MS_SCHED")
    assert launched_by_msrun() and is_scheduler() and env_rank() == 0
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    monkeypatch.setenv("RANK_ID", "1")
    assert launched_by_msrun() and not is_scheduler() and env_rank() == 1


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same 4-epoch MLP run (40 steps of global batch 32) by one process, and by 2 msrun
    workers stopped by SIGTERM to worker 1 after epoch 1 and resumed with the same msrun
    command: {"one", "two", "logs", "logs2", "step"} (step: where the workers stopped)."""
    tmp = tmp_path_factory.mktemp("dp")
    # The one process in this one (the same settings as RUN): it saves a MindSpore start-up.
    train(TrainConfig(subset=320, batch_size=32, epochs=4, seed=3, device_target="CPU",
                      output_dir=str(tmp / "one")), images=load_mnist("train", SHIPPED_MNIST)[0][:320],
          progress=False)
    two, logs = tmp / "two", tmp / "logs"
    proc = msrun(logs, *RUN, "--output_dir", str(two), wait=False)
    deadline = time.time() + 240
    while not any(line.startswith("epoch   1/") for line in _safe_output(logs, 0)):
        assert proc.poll() is None and time.time() < deadline, \
            "the msrun run never got through epoch 1:\n" + "\n".join(_safe_output(logs, 0)[-20:])
        time.sleep(0.05)
    os.kill(_worker_pid(logs, 1), signal.SIGTERM)
    proc.wait(timeout=120)
    stopped = next((line for line in worker_output(logs, 0) if line.startswith("Interrupted at step")), "")
    assert stopped, "\n".join(worker_output(logs, 0)[-20:])
    resumed = msrun(tmp / "logs2", "--resume", str(two), "--no_progress")
    assert resumed.returncode == 0, "\n".join(worker_output(tmp / "logs2", 0)[-20:])
    return {"one": tmp / "one", "two": two, "logs": logs, "logs2": tmp / "logs2",
            "step": int(stopped.split()[3].rstrip(";"))}


@needs_msrun
def test_two_msrun_workers_follow_one_process_with_the_same_global_batch(runs):
    """The MLP's BatchNorm1d sums its statistics over the workers, so 2 workers with 16 images
    each compute what one process does with 32: the same losses to float rounding at first,
    through the stop and the resume. (Later they drift apart slowly: Adam divides by the root of
    tiny second moments, e.g. of the biases in front of BatchNorm, whose true gradient is 0, and
    so magnifies rounding.)"""
    a, _ = losses(runs["two"])
    b, _ = losses(runs["one"])
    assert a.shape == b.shape == (40, 4)
    np.testing.assert_allclose(a[:5], b[:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-2)


@needs_msrun
def test_only_rank_0_writes_and_speaks(runs):
    two = runs["two"]
    _, rows = losses(two)
    assert [int(r["step"]) for r in rows] == list(range(1, 41))  # each step logged once
    assert sorted(p.name for p in (two / "samples").iterdir()) == [f"epoch_{e:03d}.png" for e in range(1, 5)]
    for name in ("config.json", "loss_curve.png", "training.gif", "checkpoints/last.ckpt",
                 "checkpoints/generator.ckpt", "checkpoints/generator_epoch_004.ckpt"):
        assert (two / name).is_file(), name
    said = worker_output(runs["logs"], 0)
    assert "2 msrun workers (batch 16 each)" in said[0]
    assert worker_output(runs["logs2"], 0)[-1].startswith("done:")
    # Worker 1 says only that it got the signal; after the resume, nothing.
    assert all("Interrupt received" in line for line in worker_output(runs["logs"], 1))
    assert worker_output(runs["logs2"], 1) == []


@needs_msrun
def test_a_stopped_msrun_run_stops_together_and_resumes_where_it_stopped(runs):
    """SIGTERM to worker 1 mid-run: both workers stop after the same step, rank 0 saves and
    prints the msrun command that resumes, which continues the step count."""
    step, said = runs["step"], worker_output(runs["logs"], 0)
    assert 10 <= step < 40
    assert "msrun --worker_num 2" in said[-1] and f"--resume {runs['two']}" in said[-1]
    assert any(f"from step {step} " in line for line in worker_output(runs["logs2"], 0))
    # Both workers left the same loop: rank 0 wrote `step` rows before the stop, and the
    # resumed run appended the rest (the full log is checked against one process above).
    _, rows = losses(runs["two"])
    assert int(rows[step - 1]["step"]) == step and len(rows) == 40


def _safe_output(log_dir, rank):
    try:
        return worker_output(log_dir, rank)
    except FileNotFoundError:
        return []


def _worker_pid(log_dir, rank) -> int:
    """The pid of msrun's worker `rank` of the run logging to `log_dir` (its stdout is there)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            stdout = os.readlink(f"/proc/{pid}/fd/1")
        except OSError:
            continue
        if (stdout == str(Path(log_dir) / f"worker_{rank}.log") and b"MS_ROLE=MS_WORKER" in environ
                and f"RANK_ID={rank}".encode() in environ):
            return int(pid)
    raise AssertionError(f"no worker {rank} process found for {log_dir}")
