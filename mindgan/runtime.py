"""Start-up and process concerns shared by the command-line tools and the training loop:
quiet logs, device and mode, fetching results without busy-waiting, and stop requests."""
from __future__ import annotations

import functools
import os
import signal
import sys
import time
import warnings

import numpy as np

DEVICES = ("auto", "CPU", "GPU", "Ascend")

__all__ = ["DEVICES", "DeviceUnavailable", "quiet_mindspore", "choose_cpu_kernels", "cpu_flags",
           "forced_convolutions",
           "setup", "HostSync", "StopRequest"]

# Families whose CPU training keeps MindSpore's own convolutions, with oneDNN capped at AVX2
# on AVX-512 CPUs: for dcgan-mnist those beat models.matmul_conv's gather + MatMul. The
# other convolutional families train uncapped, their convolutions as gather + MatMul
# (models.layers.matmul_convolutions decides, from the same CPU flags and cap).
STOCK_CONVOLUTIONS = ("dcgan-mnist",)
CONVOLUTIONAL = ("dcgan", "dcgan-mnist")
_KERNELS_CHOSEN = ""  # what choose_cpu_kernels set in this process, if anything


class DeviceUnavailable(RuntimeError):
    """The requested device target has no usable backend on this machine."""


def quiet_mindspore(verbose: bool = False) -> None:
    """Silence MindSpore's INFO/WARNING flood unless `verbose`. Call before importing it."""
    if not verbose:
        os.environ.setdefault("GLOG_v", "3")  # 3 = errors only
        warnings.filterwarnings("ignore", module=r"mindspore(\.|$)")


@functools.lru_cache(maxsize=None)  # read once: every convolution layer asks when it is built
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (avx2, avx512f, ...); empty where /proc/cpuinfo is not there."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def forced_convolutions() -> str | None:
    """"matmul" or "stock" if MINDGAN_CPU_CONVOLUTIONS forces the CPU convolution route, None
    for the automatic choice (unset, empty or "auto"); ValueError with one line otherwise."""
    value = os.environ.get("MINDGAN_CPU_CONVOLUTIONS", "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ("matmul", "stock"):
        raise ValueError(f"MINDGAN_CPU_CONVOLUTIONS={os.environ['MINDGAN_CPU_CONVOLUTIONS']}: "
                         f"choose matmul, stock or auto")
    return value


def choose_cpu_kernels(convolutional: bool | str, flags: set[str] | None = None) -> str:
    """Pick oneDNN's instruction set before MindSpore loads; returns what was decided.

    `convolutional`: whether the work runs MindSpore's own convolution kernels (True, False, or
    a model family's name: True for those in STOCK_CONVOLUTIONS). On CPUs with AVX-512,
    MindSpore 2.10's oneDNN runs their input gradients and transposed convolutions with a
    reference kernel (~1 GFLOP/s: 14.5 s for one dcgan-mnist training step at batch 64 here);
    capped at AVX2 it picks its im2col+GEMM kernel (0.42 s). The cap halves MatMul's speed
    (the MLP's training step is 35 % slower), so MLP training keeps oneDNN's choice, and so does
    the training of families whose convolutions run as gather + MatMul
    (`models.layers.matmul_convolutions`: uncapped on AVX-512). Inference commands take the
    cap (`evaluate`, whose classifier is a LeNet, went from 44.6 s to 20.7 s). A value the user
    set is kept, and nothing changes once MindSpore is loaded.
    """
    global _KERNELS_CHOSEN
    flags = cpu_flags() if flags is None else flags
    matmul = ""
    if isinstance(convolutional, str):
        forced = forced_convolutions()  # models.layers follows the same override
        stock = forced == "stock" if forced else convolutional in STOCK_CONVOLUTIONS
        if convolutional in CONVOLUTIONAL and not stock and "avx512f" in flags:
            matmul = "; convolutions as gather + MatMul (models.matmul_conv), uncapped"
        convolutional = convolutional in CONVOLUTIONAL and stock
    if _KERNELS_CHOSEN:
        return _KERNELS_CHOSEN
    if "ONEDNN_MAX_CPU_ISA" in os.environ:
        return f"ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']} (set by the user)"
    if not convolutional or "avx512f" not in flags:
        return "oneDNN's own choice of instruction set" + matmul
    if "mindspore" in sys.modules:
        return "oneDNN's own choice (MindSpore was loaded before the choice could be made)"
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    _KERNELS_CHOSEN = ("ONEDNN_MAX_CPU_ISA=AVX2: this CPU has AVX-512, where oneDNN's convolutions "
                       "fall back to a reference kernel")
    return _KERNELS_CHOSEN


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
    core. With a CPU target on a small machine that spinning thread competes with the threads
    running the kernels: on 2 cores it made steps 2-3x slower and erratic (median 110 ms,
    p10 45 ms). So, on CPU, the host sleeps for about the time the step still needs before
    it asks, learned online: a proportional controller aiming at ~2 ms of residual spin.
    On an accelerator the spin costs the kernels nothing and `fetch` just syncs.
    """

    GAIN, TARGET, MAX, BACKOFF = 0.1, 0.002, 1.0, 0.9

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
