"""Start-up and process concerns shared by the command-line tools and the training loop:
quiet logs, device and mode, fetching results without busy-waiting, and stop requests. (Which
CPU kernels run is `mindgan.cpu`'s.)"""
from __future__ import annotations

import os
import signal
import sys
import time
import warnings

import numpy as np

DEVICES = ("auto", "CPU", "GPU", "Ascend")

__all__ = ["DEVICES", "DeviceUnavailable", "quiet_mindspore", "setup", "HostSync", "StopRequest"]

class DeviceUnavailable(RuntimeError):
    """The requested device target has no usable backend on this machine."""


def quiet_mindspore(verbose: bool = False) -> None:
    """Silence MindSpore's INFO/WARNING flood unless `verbose`. Call before importing it."""
    if not verbose:
        os.environ.setdefault("GLOG_v", "3")  # 3 = errors only
        warnings.filterwarnings("ignore", module=r"mindspore(\.|$)")


def setup(device_target: str = "auto", mode: str = "graph") -> str:
    """Select the device and execution mode; returns the device used ("CPU", "GPU", "Ascend").
    In a process started by msrun, also joins its workers (`parallel.init_workers`).

    "auto" picks GPU, then Ascend, then CPU. Raises DeviceUnavailable with a one-line reason
    when an explicitly requested accelerator is not usable (no driver, CPU-only wheel, ...).
    """
    import mindspore as ms

    if device_target not in DEVICES:
        raise ValueError(f"unknown device target {device_target!r} (choose from {', '.join(DEVICES)})")
    if device_target == "auto":
        device_target = next((d for d in ("GPU", "Ascend") if _available(d)), "CPU")
    elif device_target != "CPU" and not _available(device_target):
        hint = ("GPU needs MindSpore's GPU build with CUDA 11.x (libcudart 11, cuBLAS 11, cuDNN 8)"
                if device_target == "GPU" else "Ascend needs an Ascend NPU with CANN installed")
        raise DeviceUnavailable(
            f"--device_target {device_target}: this machine has no usable {device_target} backend "
            f"({hint}); run with --device_target CPU (or auto)")
    ms.set_device(device_target)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    from .parallel import init_workers, launched_by_msrun

    if launched_by_msrun():  # one worker of msrun's: join the others (each on its own device)
        init_workers()
    return device_target


def _available(device: str) -> bool:
    import mindspore as ms

    try:
        return bool(ms.hal.is_available(device))
    except Exception:  # a half-installed backend raises instead of answering
        return False


class HostSync:
    """Fetch a step's result without busy-waiting for it.

    MindSpore's wait for a result (`Tensor.asnumpy` -> `Pipeline::WaitAll`) spins on a CPU
    core, which on a small machine competes with the threads running the kernels. So, on CPU,
    the host sleeps for about the time the step still needs before it asks, learned online: a
    proportional controller aiming at `TARGET` seconds of residual spin, closing half the gap
    per call (a slow controller leaves long steps spinning), never sleeping longer than the
    last call took. On an accelerator the spin costs the kernels nothing and `fetch` just
    syncs. (docs/PERFORMANCE.md, "Before the native kernels", has what it changed.)
    """

    GAIN, TARGET, MAX, BACKOFF = 0.5, 0.002, 60.0, 0.9

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.sleep = 0.0

    def fetch(self, result) -> np.ndarray:
        """`result.asnumpy()`, after a learned sleep when enabled."""
        if not self.enabled:
            return result.asnumpy()
        if self.sleep > 0:
            time.sleep(self.sleep)
        start = time.perf_counter()
        value = result.asnumpy()
        spin = time.perf_counter() - start
        if spin < self.TARGET:
            # Ready before we asked: we may have overslept by any amount, so back off
            # geometrically (a slow step must not leave a long sleep behind).
            self.sleep *= self.BACKOFF
        else:
            self.sleep = min(self.MAX, self.sleep + self.GAIN * (spin - self.TARGET))
        return value


class StopRequest:
    """Ctrl-C (or SIGTERM) asks a loop to stop at its next safe point; a second one aborts.

    SIGTERM is handled too because MindSpore's runtime, on every graph launch, installs a
    C++ SIGINT handler that turns Ctrl-C into SIGTERM to the process; a job scheduler's
    SIGTERM should also end in a saved, resumable state.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupt received: finishing the current call's steps and saving "
              "(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)
