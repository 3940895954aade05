"""MindSpore start-up shared by the command-line tools: quiet logs, device and mode."""
from __future__ import annotations

import os
import warnings

DEVICES = ("auto", "CPU", "GPU", "Ascend")


class DeviceUnavailable(RuntimeError):
    """The requested device target has no usable backend on this machine."""


def quiet_mindspore(verbose: bool = False) -> None:
    """Silence MindSpore's INFO/WARNING flood unless `verbose`. Call before importing it."""
    if not verbose:
        os.environ.setdefault("GLOG_v", "3")  # 3 = errors only
        warnings.filterwarnings("ignore", module=r"mindspore(\.|$)")


def setup(device_target: str = "auto", mode: str = "graph") -> str:
    """Select the device and execution mode; returns the device used ("CPU", "GPU", "Ascend").

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
    return device_target


def _available(device: str) -> bool:
    import mindspore as ms

    try:
        return bool(ms.hal.is_available(device))
    except Exception:  # a half-installed backend raises instead of answering
        return False
