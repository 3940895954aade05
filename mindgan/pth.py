"""Reading PyTorch `.pth` state dicts into NumPy, without PyTorch.

`torch.save` has written two formats: a zip archive (PyTorch 1.6 and later: `*/data.pkl` plus
one raw file per storage under `*/data/`) and the older "legacy" stream (a magic number, a
protocol number and system information as three pickles, the object as a fourth whose
storages are persistent ids, the storage keys as a fifth, then each storage's raw bytes behind
an int64 element count). Both are read here. The unpickler accepts only what a state dict is
built from (dicts, tensors, storages); anything else in the file is refused, so reading a
file never runs code from it.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["PthError", "read_pth"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class PthError(ValueError):
    """A file is not a PyTorch state dict this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    """A tensor seen in the pickle: materialised once every storage's bytes are known."""

    def __init__(self, key, offset, size, stride):
        self.key, self.offset, self.size, self.stride = key, offset, tuple(size), tuple(stride)

    def array(self, storages: dict) -> np.ndarray:
        flat = storages[self.key]
        if not self.size:
            return np.array(flat[self.offset])
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.size,
                                               tuple(s * itemsize for s in self.stride), writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream, storage_dtypes: dict):
        super().__init__(stream)
        self.storage_dtypes = storage_dtypes  # key -> dtype, filled as storages are seen

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"holds {module}.{name}, which a plain state dict does not")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        kind, key = pid[1], str(pid[2])
        if not isinstance(kind, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {kind!r}")
        self.storage_dtypes[key] = kind.dtype
        return key


def _materialise(obj, storages: dict):
    if isinstance(obj, _TensorRef):
        return obj.array(storages)
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v, storages)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, storages) for v in obj)
    return obj


def _read_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise PthError(f"{path}: a zip, but not one written by torch.save (no data.pkl)")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = z.read(prefix + "byteorder").decode() if prefix + "byteorder" in z.namelist() else "little"
        if byteorder != "little":
            raise PthError(f"{path}: written on a big-endian machine, which is not supported")
        dtypes: dict = {}
        obj = _Unpickler(io.BytesIO(z.read(pkl[0])), dtypes).load()
        storages = {key: np.frombuffer(z.read(f"{prefix}data/{key}"), dtype) for key, dtype in dtypes.items()}
    return _materialise(obj, storages)


def _read_legacy(path: Path) -> dict:
    with open(path, "rb") as f:
        dtypes: dict = {}
        if _Unpickler(f, dtypes).load() != LEGACY_MAGIC:
            raise PthError(f"{path}: not a PyTorch file (neither a zip nor the legacy magic number)")
        _Unpickler(f, dtypes).load()  # protocol version
        info = _Unpickler(f, dtypes).load()  # system information
        if isinstance(info, dict) and not info.get("little_endian", True):
            raise PthError(f"{path}: written on a big-endian machine, which is not supported")
        obj = _Unpickler(f, dtypes).load()
        keys = _Unpickler(f, dtypes).load()
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = dtypes[str(key)]
            raw = f.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise PthError(f"{path}: cut short (storage {key} has {len(raw)} of {count * dtype.itemsize} bytes)")
            storages[str(key)] = np.frombuffer(raw, dtype)
    return _materialise(obj, storages)


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The state dict in a `.pth` file written by `torch.save`: name -> NumPy array (copies, in
    the tensors' dtypes and shapes). PthError with one line if the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        obj = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except PthError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, struct.error, zipfile.BadZipFile) as exc:
        raise PthError(f"{path}: not a readable PyTorch state dict ({exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise PthError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    return dict(obj)
