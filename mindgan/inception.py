"""The Inception-v3 of FID, in MindSpore: the 2015 TensorFlow graph (`inception-2015-12-05`) as
pytorch-fid and torch-fidelity rebuild it, read from their published weights file
(`pt_inception-2015-12-05-6726825d.pth`, the same bytes under both projects' names).

The graph differs from torchvision's Inception-v3 in three places, all kept here: the average
pools of the A, C and first E blocks leave padding out of the mean (TensorFlow's), the second E
block pools by maximum, and the classifier has 1008 outputs. FID and KID use the 2048 features
of the last average pool.

Input: uint8 images `[N, 3, H, W]` of any size, resized to 299x299 inside the graph, then
scaled to [-1, 1]. Two protocols, which differ in both steps:

- "torch-fidelity" (the default; what the original TensorFlow FID code computes): TensorFlow 1's
  bilinear resize (source pixel = output pixel x in/out, no half-pixel offset), then (x - 128) / 128;
- "pytorch-fid": PyTorch's bilinear resize (half-pixel centres, no antialiasing) of x / 255,
  then 2x - 1.

Batch norms are folded into the convolutions (inference only), so each layer is one
convolution with a bias and a ReLU.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from .download import fetch_verified
from .fileio import cache_dir

__all__ = ["InceptionWeightsError", "FIDInception", "load_inception", "find_inception_weights",
           "download_inception_weights", "resize_matrix", "PROTOCOLS", "WEIGHTS_NAME", "WEIGHTS_URL",
           "WEIGHTS_SHA256", "FEATURES"]

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_NAME
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_BYTES = 95_628_359
# torch-fidelity's copy of the same file, and where PyTorch's hub keeps either.
_OTHER_NAMES = ("weights-inception-2015-12-05-6726825d.pth",)
PROTOCOLS = ("torch-fidelity", "pytorch-fid")
FEATURES = 2048
SIZE = 299
BN_EPS = 1e-3


class InceptionWeightsError(ValueError):
    """The FID Inception weights are missing, or a file is not them."""


# ----------------------------------------------------------------------------- the architecture
# (name, in, out, kernel (h, w), stride, padding (h, w)) of each convolution, block by block.

def _stem():
    return [("Conv2d_1a_3x3", 3, 32, (3, 3), 2, (0, 0)), ("Conv2d_2a_3x3", 32, 32, (3, 3), 1, (0, 0)),
            ("Conv2d_2b_3x3", 32, 64, (3, 3), 1, (1, 1)), "maxpool",
            ("Conv2d_3b_1x1", 64, 80, (1, 1), 1, (0, 0)), ("Conv2d_4a_3x3", 80, 192, (3, 3), 1, (0, 0)),
            "maxpool"]


def _a(cin, pool):
    return {"branch1x1": (cin, 64, (1, 1), 1, (0, 0)),
            "branch5x5_1": (cin, 48, (1, 1), 1, (0, 0)), "branch5x5_2": (48, 64, (5, 5), 1, (2, 2)),
            "branch3x3dbl_1": (cin, 64, (1, 1), 1, (0, 0)), "branch3x3dbl_2": (64, 96, (3, 3), 1, (1, 1)),
            "branch3x3dbl_3": (96, 96, (3, 3), 1, (1, 1)), "branch_pool": (cin, pool, (1, 1), 1, (0, 0))}


def _b(cin):
    return {"branch3x3": (cin, 384, (3, 3), 2, (0, 0)),
            "branch3x3dbl_1": (cin, 64, (1, 1), 1, (0, 0)), "branch3x3dbl_2": (64, 96, (3, 3), 1, (1, 1)),
            "branch3x3dbl_3": (96, 96, (3, 3), 2, (0, 0))}


def _c(cin, c7):
    return {"branch1x1": (cin, 192, (1, 1), 1, (0, 0)),
            "branch7x7_1": (cin, c7, (1, 1), 1, (0, 0)), "branch7x7_2": (c7, c7, (1, 7), 1, (0, 3)),
            "branch7x7_3": (c7, 192, (7, 1), 1, (3, 0)),
            "branch7x7dbl_1": (cin, c7, (1, 1), 1, (0, 0)), "branch7x7dbl_2": (c7, c7, (7, 1), 1, (3, 0)),
            "branch7x7dbl_3": (c7, c7, (1, 7), 1, (0, 3)), "branch7x7dbl_4": (c7, c7, (7, 1), 1, (3, 0)),
            "branch7x7dbl_5": (c7, 192, (1, 7), 1, (0, 3)), "branch_pool": (cin, 192, (1, 1), 1, (0, 0))}


def _d(cin):
    return {"branch3x3_1": (cin, 192, (1, 1), 1, (0, 0)), "branch3x3_2": (192, 320, (3, 3), 2, (0, 0)),
            "branch7x7x3_1": (cin, 192, (1, 1), 1, (0, 0)), "branch7x7x3_2": (192, 192, (1, 7), 1, (0, 3)),
            "branch7x7x3_3": (192, 192, (7, 1), 1, (3, 0)), "branch7x7x3_4": (192, 192, (3, 3), 2, (0, 0))}


def _e(cin):
    return {"branch1x1": (cin, 320, (1, 1), 1, (0, 0)),
            "branch3x3_1": (cin, 384, (1, 1), 1, (0, 0)), "branch3x3_2a": (384, 384, (1, 3), 1, (0, 1)),
            "branch3x3_2b": (384, 384, (3, 1), 1, (1, 0)),
            "branch3x3dbl_1": (cin, 448, (1, 1), 1, (0, 0)), "branch3x3dbl_2": (448, 384, (3, 3), 1, (1, 1)),
            "branch3x3dbl_3a": (384, 384, (1, 3), 1, (0, 1)), "branch3x3dbl_3b": (384, 384, (3, 1), 1, (1, 0)),
            "branch_pool": (cin, 192, (1, 1), 1, (0, 0))}


MIXED = [("Mixed_5b", "A", _a(192, 32)), ("Mixed_5c", "A", _a(256, 64)), ("Mixed_5d", "A", _a(288, 64)),
         ("Mixed_6a", "B", _b(288)), ("Mixed_6b", "C", _c(768, 128)), ("Mixed_6c", "C", _c(768, 160)),
         ("Mixed_6d", "C", _c(768, 160)), ("Mixed_6e", "C", _c(768, 192)), ("Mixed_7a", "D", _d(768)),
         ("Mixed_7b", "E1", _e(1280)), ("Mixed_7c", "E2", _e(2048))]


def expected_shapes() -> dict[str, tuple]:
    """Every tensor the weights file must hold for the features: name -> shape."""
    shapes = {}

    def conv(name, cin, cout, k):
        shapes[f"{name}.conv.weight"] = (cout, cin, *k)
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{part}"] = (cout,)

    for layer in _stem():
        if layer != "maxpool":
            conv(layer[0], *layer[1:4])
    for block, _, convs in MIXED:
        for name, (cin, cout, k, _s, _p) in convs.items():
            conv(f"{block}.{name}", cin, cout, k)
    return shapes


# ----------------------------------------------------------------------------- resizing

def resize_matrix(n_in: int, n_out: int, protocol: str = "torch-fidelity") -> np.ndarray:
    """The bilinear resize of one axis as a matrix `[n_out, n_in]` (float32): row i holds the
    weights of the (at most two) source pixels of output pixel i, as `protocol` resizes."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    i = np.arange(n_out, dtype=np.float32)
    if protocol == "torch-fidelity":   # TensorFlow 1, align_corners=False: src = i * in / out
        src = i * np.float32(n_in / n_out)
    else:                              # PyTorch, align_corners=False: half-pixel centres, clamped at 0
        src = np.maximum((i + np.float32(0.5)) * np.float32(n_in / n_out) - np.float32(0.5), np.float32(0))
    lo = np.floor(src).astype(np.int64)
    lo = np.minimum(lo, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


# ----------------------------------------------------------------------------- the network

def _out_size(size: tuple, kernel: tuple, stride: int, padding: tuple) -> tuple:
    return tuple((size[k] + 2 * padding[k] - kernel[k]) // stride + 1 for k in (0, 1))


# Each block's paths: (pool before the convolutions, convolutions in order, the pair applied
# side by side at the end). Every path starts from the block's input.
_PATHS = {
    "A": [(None, ["branch1x1"], None), (None, ["branch5x5_1", "branch5x5_2"], None),
          (None, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], None), ("avg", ["branch_pool"], None)],
    "B": [(None, ["branch3x3"], None), (None, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], None),
          ("max_s2", [], None)],
    "C": [(None, ["branch1x1"], None), (None, ["branch7x7_1", "branch7x7_2", "branch7x7_3"], None),
          (None, [f"branch7x7dbl_{i}" for i in range(1, 6)], None), ("avg", ["branch_pool"], None)],
    "D": [(None, ["branch3x3_1", "branch3x3_2"], None), (None, [f"branch7x7x3_{i}" for i in range(1, 5)], None),
          ("max_s2", [], None)],
    "E1": [(None, ["branch1x1"], None), (None, ["branch3x3_1"], ["branch3x3_2a", "branch3x3_2b"]),
           (None, ["branch3x3dbl_1", "branch3x3dbl_2"], ["branch3x3dbl_3a", "branch3x3dbl_3b"]),
           ("avg", ["branch_pool"], None)],
}
_PATHS["E2"] = _PATHS["E1"][:3] + [("max_s1", ["branch_pool"], None)]


def _cells(kernels):
    import mindspore as ms
    from mindspore import nn, ops

    from .models.layers import Conv2d

    class Conv(nn.Cell):
        """Convolution with the batch norm folded in, then ReLU, for inputs of `size` pixels
        (h, w), on the CPU route of `kernels` (MindSpore's own CPU convolutions took ~100x
        longer on these layers)."""

        def __init__(self, weight: np.ndarray, bias: np.ndarray, stride: int, padding: tuple, size: tuple):
            super().__init__()
            cout, cin, kh, kw = weight.shape
            ph, pw = padding
            self.conv = Conv2d(cin, cout, (kh, kw), stride=stride, pad_mode="pad", padding=(ph, ph, pw, pw),
                               has_bias=True, input_size=size, kernels=kernels)
            self.conv.weight.set_data(ms.Tensor(weight))
            self.conv.bias.set_data(ms.Tensor(bias))
            self.out_size = _out_size(size, (kh, kw), stride, padding)

        def construct(self, x):
            return ops.relu(self.conv(x))

    class Path(nn.Cell):
        """One path of a block: an optional pool, convolutions, and for the E blocks a last
        pair of convolutions applied side by side (1x3 and 3x1) and concatenated."""

        def __init__(self, pool, convs: list, split: list | None):
            super().__init__()
            self.pool = pool or "none"
            self.has_convs, self.has_split = bool(convs), bool(split)
            self.convs = nn.SequentialCell(convs) if convs else None
            self.split = nn.CellList(split) if split else None
            self.maxpool_s2 = nn.MaxPool2d(3, 2, pad_mode="valid")
            self.maxpool_s1 = nn.MaxPool2d(3, 1, pad_mode="valid")

        def construct(self, x):
            if self.pool == "avg":    # TensorFlow's average pool leaves the zero padding out of the mean
                x = ops.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            elif self.pool == "max_s2":
                x = self.maxpool_s2(x)
            elif self.pool == "max_s1":
                # The 2015 graph pools by maximum here. The block's input comes out of ReLUs
                # (>= 0), so padding with zeros gives the same maxima as padding with -inf.
                x = self.maxpool_s1(ops.pad(x, (1, 1, 1, 1)))
            if self.has_convs:
                x = self.convs(x)
            if self.has_split:
                x = ops.cat((self.split[0](x), self.split[1](x)), 1)
            return x

    class Mixed(nn.Cell):
        """One Inception block for inputs of `size` pixels: its paths side by side,
        concatenated along channels. `conv(name, size)` builds its convolution `name`."""

        def __init__(self, kind: str, conv, size: tuple):
            super().__init__()
            paths = []
            for pool, names, split in _PATHS[kind]:
                at = _out_size(size, (3, 3), 2, (0, 0)) if pool == "max_s2" else size
                chain = []
                for name in names:
                    chain.append(conv(name, at))
                    at = chain[-1].out_size
                paths.append(Path(pool, chain, [conv(name, at) for name in split] if split else None))
            self.paths = nn.CellList(paths)
            self.out_size = at

        def construct(self, x):
            outs = ()
            for path in self.paths:
                outs = outs + (path(x),)
            return ops.cat(outs, 1)

    return Conv, Mixed


def _folded(state: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) float32 of convolution `name` with its batch norm (eps 1e-3) folded in."""
    w = state[f"{name}.conv.weight"].astype(np.float64)
    g, b = state[f"{name}.bn.weight"].astype(np.float64), state[f"{name}.bn.bias"].astype(np.float64)
    mean, var = state[f"{name}.bn.running_mean"].astype(np.float64), state[f"{name}.bn.running_var"].astype(np.float64)
    scale = g / np.sqrt(var + BN_EPS)
    return (w * scale[:, None, None, None]).astype(np.float32), (b - mean * scale).astype(np.float32)


def FIDInception(state: dict[str, np.ndarray], protocol: str = "torch-fidelity", input_size=SIZE, kernels=None):
    """The network for a state dict (name -> array, as `pth.read_pth` gives): a Cell mapping
    images `[N, 3, H, W]` (uint8, or float32 holding 0-255) to their 2048 pool features
    `[N, 2048]` float32, where (H, W) is `input_size` (an int for square images). `kernels`:
    the CPU convolution route (default: `cpu.decide` for the current device)."""
    import mindspore as ms
    from mindspore import nn, ops

    from .cpu import decide

    check_state(state)
    kernels = kernels or decide(ms.get_context("device_target"))
    Conv, Mixed = _cells(kernels)
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    ry, rx = resize_matrix(h, SIZE, protocol), resize_matrix(w, SIZE, protocol)

    def conv(name, stride, padding, size):
        return Conv(*_folded(state, name), stride, padding, size)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            stem, size = [], (SIZE, SIZE)
            for layer in _stem():
                if layer == "maxpool":
                    stem.append(nn.MaxPool2d(3, 2, pad_mode="valid"))
                    size = _out_size(size, (3, 3), 2, (0, 0))
                else:
                    name, _cin, _cout, _k, stride, padding = layer
                    stem.append(conv(name, stride, padding, size))
                    size = stem[-1].out_size
            self.stem = nn.SequentialCell(stem)
            blocks = []
            for block, kind, convs in MIXED:
                def make(name, at, block=block, convs=convs):
                    return conv(f"{block}.{name}", convs[name][3], convs[name][4], at)
                blocks.append(Mixed(kind, make, size))
                size = blocks[-1].out_size
            self.blocks = nn.SequentialCell(blocks)
            self.ry = ms.Tensor(ry)            # [299, H]: rows
            self.rxt = ms.Tensor(rx.T.copy())  # [W, 299]: columns
            self.scale = 1.0 / 128 if protocol == "torch-fidelity" else 2.0 / 255
            for p in self.get_parameters():
                p.requires_grad = False

        def construct(self, x):
            x = ops.cast(x, ms.float32)
            x = ops.matmul(self.ry, ops.matmul(x, self.rxt))   # [N, 3, 299, 299]
            x = x * self.scale - 1.0
            return ops.mean(self.blocks(self.stem(x)), (2, 3))

    net = Net()
    net.set_train(False)
    net.protocol, net.input_size = protocol, (h, w)
    return net


def check_state(state: dict) -> None:
    """InceptionWeightsError naming the first tensor that is missing or misshapen."""
    for name, shape in expected_shapes().items():
        if name not in state:
            raise InceptionWeightsError(f"not the FID Inception weights: no tensor {name}")
        if tuple(state[name].shape) != shape:
            raise InceptionWeightsError(f"not the FID Inception weights: {name} is "
                                        f"{tuple(state[name].shape)}, not {shape}")


# ----------------------------------------------------------------------------- the weights file

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def weights_dir() -> Path:
    """Where downloaded weights go: `$MINDGAN_CACHE/inception`, else ~/.cache/mindgan/inception."""
    return cache_dir("inception")


def find_inception_weights() -> Path | None:
    """The published weights file if it is already on this machine: in mindgan's cache, or in
    PyTorch's hub cache (where pytorch-fid and torch-fidelity download it)."""
    torch_home = Path(os.environ.get("TORCH_HOME") or
                      Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch")
    for folder in (weights_dir(), torch_home / "hub" / "checkpoints"):
        for name in (WEIGHTS_NAME, *_OTHER_NAMES):
            if (folder / name).is_file() and (folder / name).stat().st_size == WEIGHTS_BYTES:
                return folder / name
    return None


def download_inception_weights(url: str = WEIGHTS_URL, dest_dir: str | os.PathLike | None = None,
                               sha256: str = WEIGHTS_SHA256, timeout: float = 60.0) -> Path:
    """Fetch the weights file into `dest_dir` (default `weights_dir()`) with a progress bar and
    check its SHA-256 before it takes its name; OSError with one line on any failure (nothing
    is left behind)."""
    def check(path):
        got = _sha256(path)
        if got != sha256:
            return f"the download's SHA-256 is {got[:16]}..., not {sha256[:16]}... (a damaged or different file)"
        return None

    return fetch_verified(url, Path(dest_dir or weights_dir()) / WEIGHTS_NAME, check, timeout)


def load_inception(path: str | os.PathLike | None = None, protocol: str = "torch-fidelity",
                   input_size=SIZE, url: str = WEIGHTS_URL, log=None):
    """The FID network with the weights in `path`; without one, the published file from the
    caches (`find_inception_weights`), else downloaded from `url`. Returns (network, the file's
    SHA-256). A file other than the published one works (its digest says which it was) with a
    warning that its figures are not comparable with published FIDs."""
    from .pth import read_pth

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if path is None:
        path = find_inception_weights()
        if path is None:
            try:
                path = download_inception_weights(url)
            except OSError as exc:
                raise InceptionWeightsError(
                    f"the FID Inception weights are not on this machine and could not be downloaded ({exc}); "
                    f"download {WEIGHTS_NAME} from {WEIGHTS_URL} by hand and pass --inception PATH") from None
    path = Path(path)
    if not path.is_file():
        raise InceptionWeightsError(f"--inception {path}: no such file")
    digest = _sha256(path)
    if digest != WEIGHTS_SHA256:
        log(f"warning: {path} is not the published {WEIGHTS_NAME} (SHA-256 {digest[:16]}...): "
            f"its FID and KID are not comparable with published figures")
    try:
        state = read_pth(path)
    except ValueError as exc:
        raise InceptionWeightsError(f"--inception {exc}") from None
    try:
        return FIDInception(state, protocol, input_size), digest
    except InceptionWeightsError as exc:
        raise InceptionWeightsError(f"--inception {path}: {exc}") from None


def random_state(seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights in the published file's layout (every tensor it holds, the classifier
    and batch counters included): He-normal convolutions, identity batch norms. Features of
    such a network still vary with the image, so implementations can be compared without the
    real weights (which cannot be downloaded everywhere)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in expected_shapes().items():
        if name.endswith("conv.weight"):
            fan_in = int(np.prod(shape[1:]))
            state[name] = (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in)))
        elif name.endswith(("bn.weight", "running_var")):
            state[name] = np.ones(shape, np.float32)
        else:
            state[name] = np.zeros(shape, np.float32)
        if name.endswith("running_var"):
            state[name.replace("running_var", "num_batches_tracked")] = np.zeros((), np.int64)
    state["fc.weight"] = rng.standard_normal((1008, FEATURES), dtype=np.float32) * np.float32(0.01)
    state["fc.bias"] = np.zeros(1008, np.float32)
    return state
