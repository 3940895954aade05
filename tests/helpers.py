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


def _pickled(value) -> bytes:
    """`value`'s pickle opcodes without the protocol header and STOP, unused memo puts dropped."""
    import pickle
    import pickletools

    return pickletools.optimize(pickle.dumps(value, 2))[2:-1]


def write_pth(path, state: dict) -> Path:
    """Write a state dict of NumPy arrays as `torch.save` does (zip format), without PyTorch:
    data.pkl rebuilds each tensor with torch._utils._rebuild_tensor_v2 from a storage named by
    a persistent id, whose bytes are data/<key>. (torch.load reads what this writes: checked
    by hand with torch 2.14.)"""
    import zipfile

    storage_names = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                     np.dtype(np.int64): "LongStorage", np.dtype(np.uint8): "ByteStorage"}

    def glob(module, name):
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    body = b"\x80\x02" + glob("collections", "OrderedDict") + b")R("
    for key, (name, value) in enumerate(state.items()):
        value = np.require(value, requirements="C")
        strides = tuple(s // value.itemsize for s in value.strides)
        pid = (b"(" + _pickled("storage") + glob("torch", storage_names[value.dtype]) + _pickled(str(key))
               + _pickled("cpu") + _pickled(value.size) + b"tQ")
        body += (_pickled(name) + glob("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + _pickled(0)
                 + _pickled(tuple(value.shape)) + _pickled(strides) + _pickled(False)
                 + glob("collections", "OrderedDict") + b")R" + b"tR")
    body += b"u."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", body)
        z.writestr("archive/byteorder", "little")
        for key, value in enumerate(state.values()):
            z.writestr(f"archive/data/{key}", np.require(value, requirements="C").tobytes())
        z.writestr("archive/version", "3\n")
    return Path(path)


def serve(handler):
    """A local HTTP server on 127.0.0.1 for `handler` (a BaseHTTPRequestHandler class), in a
    thread: yields its base URL, then shuts it down (for module-scoped pytest fixtures)."""
    import threading
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
