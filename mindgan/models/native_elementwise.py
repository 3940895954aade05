"""Leaky ReLU and dropout masks by the package's native CPU kernels (`csrc/elementwise.cc`).

MindSpore 2.10's CPU elementwise kernels take 1-2 ms each on a convolutional feature map
(`[256, 64, 14, 14]`), and `layers.LeakyReLU` is five of them forward and five backward,
`layers.Dropout`'s mask a dozen; one native pass does either at memory speed. Results are bit
for bit those of the graph-op versions in `layers`, which these replace where
`layers.native_elementwise()` says so (CPU, with the native library built).
"""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops

from .. import native

__all__ = ["NativeLeakyReLU", "NativeDropout"]


def _same_shape(x, *others):
    return x


def _same_dtype(x, *others):
    return x


def _op(name: str) -> ops.Custom:
    return ops.Custom(f"{native.library()}:{name}", out_shape=_same_shape, out_dtype=_same_dtype,
                      func_type="aot")


class NativeLeakyReLU(nn.Cell):
    """x float32 (any shape) -> x > 0 ? x : slope * x, with its gradient as a custom bprop."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = Tensor(np.array([slope], np.float32))
        self.forward, self.backward = _op("LeakyRelu"), _op("LeakyReluGrad")

    def construct(self, x):
        return self.forward(x, self.slope)

    def bprop(self, x, out, dout):
        return (self.backward(dout, x, self.slope),)


class NativeDropout(nn.Cell):
    """(x float32, state int32 `[4]` = (calls, salt, first index, threshold)) -> x * keep,
    keep = `scale` where the element's hash keeps it, else 0 (`layers.Dropout`'s mask). The
    gradient applies the same mask again, computed afresh (one pass, nothing kept)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = Tensor(np.array([scale], np.float32))
        self.apply = _op("Dropout")

    def construct(self, x, state):
        return self.apply(x, state, self.scale)

    def bprop(self, x, state, out, dout):
        return self.apply(dout, state, self.scale), ops.zeros_like(state)
