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
           "forced_convolutions", "convolution_route", "ROUTES",
           "setup", "HostSync", "StopRequest"]

# Families whose CPU training keeps MindSpore's own convolutions, with oneDNN capped at AVX2
# on AVX-512 CPUs, where the native oneDNN kernel (`native`) cannot be built: for dcgan-mnist
# those beat models.matmul_conv's gather + MatMul. See `convolution_route`.
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


ROUTES = ("onednn", "matmul", "stock")


def forced_convolutions() -> str | None:
    """A route of ROUTES if MINDGAN_CPU_CONVOLUTIONS forces the CPU convolution route, None
    for the automatic choice (unset, empty or "auto"); ValueError with one line otherwise
    (also when it forces "onednn" and the native kernel cannot be built here)."""
    value = os.environ.get("MINDGAN_CPU_CONVOLUTIONS", "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ROUTES:
        raise ValueError(f"MINDGAN_CPU_CONVOLUTIONS={os.environ['MINDGAN_CPU_CONVOLUTIONS']}: "
                         f"choose {', '.join(ROUTES)} or auto")
    if value == "onednn":
        from .native import library_status

        path, reason = library_status()
        if path is None:
            raise ValueError(f"MINDGAN_CPU_CONVOLUTIONS=onednn: {reason}")
    return value


def convolution_route(family: str | None = None, flags: set[str] | None = None) -> str:
    """How `models.layers.Conv2d` / `Conv2dTranspose` compute on CPU, one of ROUTES:

    - "onednn": the native kernel (`native`, `models.onednn_conv`): oneDNN with blocked
      layouts, PyTorch's kernels, on every x86 CPU; wherever it can be built (a C++ compiler);
    - "matmul": gather + MatMul (`models.matmul_conv`), on AVX-512 CPUs with oneDNN uncapped,
      where MindSpore's own kernels fall back to a reference one;
    - "stock": MindSpore's own kernels (oneDNN's im2col + GEMM on plain NCHW).

    MINDGAN_CPU_CONVOLUTIONS forces one. Without the native kernel, `family` (before
    MindSpore loads) picks stock for STOCK_CONVOLUTIONS; after, an AVX2 cap means stock.
    """
    flags = cpu_flags() if flags is None else flags
    forced = forced_convolutions()
    if forced:
        return forced
    from .native import library_status

    if library_status()[0] is not None:
        return "onednn"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    uncapped = isa == "ALL" or "AVX512" in isa or "AVX10" in isa
    if "avx512f" in flags and uncapped and family not in STOCK_CONVOLUTIONS:
        return "matmul"
    return "stock"


_ROUTE_NAMES = {"onednn": "convolutions by the native oneDNN kernel (models.onednn_conv)",
                "matmul": "convolutions as gather + MatMul (models.matmul_conv)",
                "stock": "MindSpore's own convolutions"}


def choose_cpu_kernels(convolutional: bool | str, flags: set[str] | None = None) -> str:
    """Pick oneDNN's instruction set before MindSpore loads; returns what was decided.

    `convolutional`: whether the work runs MindSpore's own convolution kernels (True, False, or
    a model family's name: then its `convolution_route`, and True where that is "stock";
    the native route also sets OMP_WAIT_POLICY=PASSIVE unless the user set it). On
    CPUs with AVX-512, MindSpore 2.10's oneDNN runs their input gradients and transposed
    convolutions with a reference kernel (~1 GFLOP/s: 14.5 s for one dcgan-mnist training step
    at batch 64 here); capped at AVX2 it picks its im2col+GEMM kernel (0.42 s). The cap halves
    MatMul's speed (the MLP's training step is 35 % slower), so work without stock
    convolutions keeps oneDNN's choice. Inference commands take the cap (`evaluate`, whose
    classifier is a LeNet, went from 44.6 s to 20.7 s). A value the user set is kept, and
    nothing changes once MindSpore is loaded.
    """
    global _KERNELS_CHOSEN
    flags = cpu_flags() if flags is None else flags
    route = ""
    if isinstance(convolutional, str):
        family, convolutional = convolutional, False
        if family in CONVOLUTIONAL:
            chosen = convolution_route(family, flags)
            route, convolutional = f"; {_ROUTE_NAMES[chosen]}", chosen == "stock"
            if chosen != "onednn" and not forced_convolutions():
                from .native import library_status

                route += f" (native kernels not built: {library_status()[1]})"
            if chosen == "onednn" and "mindspore" not in sys.modules:
                # The native kernels' OpenMP threads then sleep between kernels instead of
                # spinning (libgomp's default), which took a core from MindSpore's threads:
                # dcgan step 1.84-1.91 vs 1.96-1.99 s. libgomp reads it once, when MindSpore
                # loads it.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if _KERNELS_CHOSEN:
        return _KERNELS_CHOSEN + route
    if "ONEDNN_MAX_CPU_ISA" in os.environ:
        return f"ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']} (set by the user)" + route
    if not convolutional or "avx512f" not in flags:
        return "oneDNN's own choice of instruction set" + route
    if "mindspore" in sys.modules:
        return "oneDNN's own choice (MindSpore was loaded before the choice could be made)" + route
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    _KERNELS_CHOSEN = ("ONEDNN_MAX_CPU_ISA=AVX2: this CPU has AVX-512, where oneDNN's convolutions "
                       "fall back to a reference kernel")
    return _KERNELS_CHOSEN + route


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
    it asks, learned online: a proportional controller aiming at ~2 ms of residual spin,
    which never sleeps longer than the last call took (sleep + spin). It closes half the gap
    per call: with a tenth and sleep capped at 1 s, a 2-s dcgan step spun for its last
    second forever, and the kernels running then took twice their time (dcgan step 1.94 ->
    1.84 s). On an accelerator the spin costs the kernels nothing and `fetch` just syncs.
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
