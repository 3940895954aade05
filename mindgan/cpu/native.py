"""The package's native CPU kernels (`mindgan/cpu/csrc`): compiled on first use, cached, loaded.

One library of MindSpore "aot" custom operators: `csrc/onednn_conv.cc` runs convolutions
through the oneDNN that MindSpore ships, with blocked layouts (`cpu.onednn_conv`);
`csrc/elementwise.cc` runs leaky ReLU, dropout masks and batch norm (forward and backward) in
one pass each (`cpu.elementwise`).
It is built with the system's C++ compiler (`$CXX`, else g++) against MindSpore's own
`lib/libdnnl.so.3`, once per source, compiler and MindSpore install, into `$MINDGAN_CACHE/kernels`
(default `~/.cache/mindgan/kernels`). Nothing here imports MindSpore, so `mindgan.cpu` can ask
before MindSpore loads; where the library cannot be built the layers keep their graph-op routes, and
`library_status()` says why.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..fileio import cache_dir, write_text

__all__ = ["NativeUnavailable", "library", "library_status", "custom_op", "SOURCES"]

SOURCES = [Path(__file__).parent / "csrc" / name for name in ("onednn_conv.cc", "elementwise.cc")]
FLAGS = ["-O2", "-std=c++17", "-shared", "-fPIC", "-fopenmp"]


class NativeUnavailable(RuntimeError):
    """The native kernel cannot be built or loaded here; the message says why, in one line."""


def _mindspore_lib() -> Path:
    spec = importlib.util.find_spec("mindspore")
    if spec is None or spec.origin is None:
        raise NativeUnavailable("MindSpore is not installed")
    lib = Path(spec.origin).parent / "lib"
    if not (lib / "libdnnl.so.3").exists():
        raise NativeUnavailable(f"{lib}/libdnnl.so.3 not found (MindSpore without oneDNN 3)")
    return lib


def _build(lib: Path) -> Path:
    compiler = os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is None:
        raise NativeUnavailable(f"no C++ compiler ({compiler}) on PATH")
    dnnl = lib / "libdnnl.so.3"
    sources = b"".join(source.read_bytes() for source in SOURCES)
    stamp = f"{sources!r}{compiler}{FLAGS}{dnnl.resolve()}{dnnl.stat().st_size}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    target = cache_dir("kernels") / f"mindgan_cpu-{digest}.so"
    if _intact(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name and renamed: concurrent workers (msrun) never load half a file.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    command = [compiler, *FLAGS, *map(str, SOURCES), "-o", tmp, str(dnnl), f"-Wl,-rpath,{lib}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise NativeUnavailable(f"{compiler} could not build mindgan/cpu/csrc "
                                    f"(exit {done.returncode}): {first}")
        os.replace(tmp, target)
        write_text(_checksum_file(target), _sha256(target))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _checksum_file(library: Path) -> Path:
    return library.with_suffix(".sha256")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(library: Path) -> bool:
    """Whether `library` is there as it was built: a damaged shared library (a truncated file)
    does not fail to load, it kills the process with a bus error, so it is checked first and
    built again if it does not match."""
    checksum = _checksum_file(library)
    try:
        return library.exists() and checksum.read_text().strip() == _sha256(library)
    except OSError:
        return False


def _threads() -> int:
    """Threads for the kernel: OMP_NUM_THREADS if set, else this process's CPUs shared among
    msrun's workers on this machine."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return int(os.environ["OMP_NUM_THREADS"])
    workers = int(os.environ.get("MS_LOCAL_WORKER", os.environ.get("MS_WORKER_NUM", "1")) or 1)
    return max(1, len(os.sched_getaffinity(0)) // max(1, workers))


@functools.lru_cache(maxsize=None)
def _load() -> tuple[str | None, str]:
    try:
        path = _build(_mindspore_lib())
        library = ctypes.CDLL(str(path))
        if library.mindgan_conv_check() != 0:
            raise NativeUnavailable("MindSpore's oneDNN is not a 3.x threadpool build")
        library.mindgan_conv_set_threads(_threads())
        return str(path), "built"
    except NativeUnavailable as e:
        return None, str(e)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"native kernel unavailable: {str(e).splitlines()[0]}"


def library_status() -> tuple[str | None, str]:
    """(path of the built library or None, a one-line reason when None)."""
    return _load()


def library() -> str:
    """Path of the built library; NativeUnavailable (one line) if it cannot be built here."""
    path, reason = _load()
    if path is None:
        raise NativeUnavailable(reason)
    return path


class _SameDtypes:
    """out_dtype of a custom op: the first input's dtype for each of `outputs` outputs."""

    def __init__(self, outputs: int):
        self.outputs = outputs

    def __call__(self, first, *others):
        return first if self.outputs == 1 else [first] * self.outputs


def custom_op(name: str, out_shape, outputs: int = 1, bprop=None):
    """A MindSpore "aot" custom operator running the library's function `name` (NativeUnavailable
    where it cannot be built), with `outputs` float outputs of the first input's dtype and
    shapes from `out_shape(*input_shapes)`; `bprop(*inputs, out, dout)` -> one gradient per
    input, or None for an operator that is not differentiated.

    Gradients live on the operators, not on cells: MindSpore 2.10 fails to compile a graph
    where a cell with a custom bprop is called twice and one of the calls is differentiated
    twice (a gradient penalty), and operator bprops have no such limit."""
    from mindspore import ops

    extra = {} if bprop is None else {"bprop": bprop}
    return ops.Custom(f"{library()}:{name}", out_shape=out_shape, out_dtype=_SameDtypes(outputs),
                      func_type="aot", **extra)
