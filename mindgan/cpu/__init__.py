"""The CPU backend: how the layers compute on MindSpore's CPU target, decided once per process.

MindSpore 2.10 hands oneDNN plain NCHW tensors on CPU, where its convolutions are slow (and on
AVX-512 CPUs fall back to a reference kernel for input gradients and transposed
convolutions). So on CPU the convolution layers take one of three routes (`ROUTES`):

- "onednn": the package's native kernels (`native`, `csrc/`): oneDNN with blocked layouts
  (`onednn_conv`), and leaky ReLU, dropout and batch norm in one pass each (`elementwise`);
  wherever a C++ compiler can build them;
- "matmul": convolutions as gather + MatMul (`matmul_conv`), on AVX-512 CPUs with oneDNN
  uncapped, where no compiler is;
- "stock": MindSpore's own kernels (with oneDNN capped at AVX2 on AVX-512 CPUs, see
  `choose_cpu_kernels`).

`decide(device, family)` makes the choice once (before MindSpore loads where the instruction
set must be capped: `choose_cpu_kernels`) and returns a `Kernels`, which is passed to the
families' constructors and from them to each layer; layers read no environment. GPU and
Ascend always get `Kernels()` (MindSpore's own kernels), and export builds with `STANDARD`
(every layer its stock cell), so exported graphs hold standard nodes. docs/PERFORMANCE.md has
the measurements behind each choice.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import sys

from ..registry import CONVOLUTIONAL

__all__ = ["Kernels", "DEFAULT", "STANDARD", "ROUTES", "decide", "choose_cpu_kernels", "cpu_flags",
           "forced_convolutions", "convolution_route", "CONVOLUTIONAL", "STOCK_CONVOLUTIONS"]

ROUTES = ("onednn", "matmul", "stock")


@dataclasses.dataclass(frozen=True)
class Kernels:
    """How a network's layers compute. `conv`: the convolution route, one of ROUTES (the
    elementwise native kernels come with "onednn"). `rewrites`: layers that a stock kernel
    runs slowly compute as cheaper ops of the same math (a convolution covering its whole
    input as the MatMul it is); False for `STANDARD`, where every layer is its stock cell.
    `second_order`: the discriminator must be differentiable twice (a gradient penalty on its
    input gradient), so its batch norms leave the native kernel, which has no second derivative."""
    conv: str = "stock"
    rewrites: bool = True
    second_order: bool = False

    def __post_init__(self):
        if self.conv not in ROUTES:
            raise ValueError(f"unknown convolution route {self.conv!r} (choose from {', '.join(ROUTES)})")

    @property
    def native(self) -> bool:
        """Whether layers that have a native elementwise kernel use it (training only)."""
        return self.conv == "onednn"

    @property
    def native_batch_norm(self) -> bool:
        """Whether a discriminator's batch norms use the native kernel (training only)."""
        return self.native and not self.second_order


DEFAULT = Kernels()  # MindSpore's own kernels, with the rewrites: GPU, Ascend, stock CPU
STANDARD = Kernels("stock", rewrites=False)


# Families whose CPU training keeps MindSpore's own convolutions, with oneDNN capped at AVX2
# on AVX-512 CPUs, where the native oneDNN kernel (`native`) cannot be built: for dcgan-mnist
# those beat cpu.matmul_conv's gather + MatMul. See `convolution_route`.
STOCK_CONVOLUTIONS = ("dcgan-mnist",)
_KERNELS_CHOSEN = ""  # what choose_cpu_kernels set in this process, if anything


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
    """How `models.layers.Conv2d` / `Conv2dTranspose` should compute on this CPU, one of ROUTES:

    - "onednn": the native kernel (`native`, `onednn_conv`): oneDNN with blocked layouts,
      PyTorch's kernels, on every x86 CPU; wherever it can be built (a C++ compiler);
    - "matmul": gather + MatMul (`matmul_conv`), on AVX-512 CPUs with oneDNN uncapped, where
      MindSpore's own kernels fall back to a reference one;
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


_ROUTE_NAMES = {"onednn": "convolutions by the native oneDNN kernel (cpu.onednn_conv)",
                "matmul": "convolutions as gather + MatMul (cpu.matmul_conv)",
                "stock": "MindSpore's own convolutions"}


def choose_cpu_kernels(convolutional: bool | str, flags: set[str] | None = None) -> str:
    """Pick oneDNN's instruction set before MindSpore loads; returns what was decided, in words.

    `convolutional`: whether the work runs MindSpore's own convolution kernels (True, False, or
    a model family's name, or "inception": then its `convolution_route`, and True where that is "stock";
    the native route also sets OMP_WAIT_POLICY=PASSIVE unless the user set it). On
    CPUs with AVX-512, MindSpore 2.10's oneDNN runs their input gradients and transposed
    convolutions with a reference kernel; capped at AVX2 it picks its im2col+GEMM kernel. The
    cap slows MatMul, so work without stock convolutions keeps oneDNN's choice; inference
    commands (the FID classifier is a stock LeNet) take it. A value the user set is kept, and
    nothing changes once MindSpore is loaded. docs/PERFORMANCE.md has the measurements.
    """
    global _KERNELS_CHOSEN
    flags = cpu_flags() if flags is None else flags
    route = ""
    if isinstance(convolutional, str):
        family, convolutional = convolutional, False
        if family in CONVOLUTIONAL or family == "inception":  # FID's Inception: mindgan.inception
            chosen = convolution_route(family, flags)
            route, convolutional = f"; {_ROUTE_NAMES[chosen]}", chosen == "stock"
            if chosen != "onednn" and not forced_convolutions():
                from .native import library_status

                route += f" (native kernels not built: {library_status()[1]})"
            if chosen == "onednn" and "mindspore" not in sys.modules:
                # The native kernels' OpenMP threads then sleep between kernels instead of
                # spinning (libgomp's default), which took a core from MindSpore's threads.
                # libgomp reads it once, when MindSpore loads it.
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




@functools.lru_cache(maxsize=None)
def decide(device: str, family: str | None = None) -> Kernels:
    """The kernels of a `family`'s networks on `device` ("CPU", "GPU", "Ascend"), decided once
    per process: MindSpore's own off CPU, the `convolution_route` on CPU."""
    if device != "CPU":
        return DEFAULT
    return Kernels(convolution_route(family))
