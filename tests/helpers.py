"""Test helpers: an IDX writer independent of mindgan's reader, so round trips test something."""
import gzip
import struct
from pathlib import Path

import numpy as np

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
              np.float32: 0x0D, np.float64: 0x0E}
REPO = Path(__file__).resolve().parent.parent
SHIPPED_MNIST = REPO / "data" / "mnist"


def idx_bytes(array) -> bytes:
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_fake_mnist(folder, split="train", n=12, layout="original", gz=False, seed=0):
    """A tiny MNIST-shaped split in one of the three layouts; returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    prefix = {"train": "train", "test": "t10k"}[split]
    folder = Path(folder)
    ext = ".gz" if gz else ""
    if layout == "original":
        names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    elif layout == "dotted":
        names = (f"{prefix}-images.idx3-ubyte", f"{prefix}-labels.idx1-ubyte")
    elif layout == "tutorial":
        folder = folder / "MNIST_Data" / split
        names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    else:
        raise ValueError(layout)
    write_idx(folder / (names[0] + ext), images, gz)
    write_idx(folder / (names[1] + ext), labels, gz)
    return images, labels
