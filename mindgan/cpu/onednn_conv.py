"""2-D convolutions through the package's native oneDNN kernel, for MindSpore's CPU backend.

MindSpore 2.10 hands oneDNN plain NCHW tensors, for which oneDNN has only im2col + GEMM or, on
AVX-512 CPUs, a reference kernel (docs/PERFORMANCE.md). `csrc/onednn_conv.cc` calls the same
oneDNN with layouts of its own choosing, which gets its blocked direct / brgemm kernels
(PyTorch's), reordering NCHW in and out on each call. It runs as three MindSpore "aot" custom
operators: forward, input gradient and weight gradient; a transposed convolution is the input
gradient of the convolution it inverts, so one geometry serves both, with the other two as its
custom bprop. Built by `native.library()`.
"""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn

from . import native

__all__ = ["OneDNNConv"]


class _Shape:
    """Output shape `[N, channels, h, w]` of a custom op: N from input 0, channels from
    dimension `channel` of input 1 (the weight), (h, w) = `size`."""

    def __init__(self, channel: int, size):
        self.channel, self.size = channel, list(size)

    def __call__(self, a, w, geometry):
        return [a[0], w[self.channel]] + self.size


class OneDNNConv(nn.Cell):
    """A convolution from X (`in_hw` pixels) to Y (`out_hw`), kernel `[O, C, kh, kw]`, `stride`,
    padding `pad` (top, left) before X, the rest after as the sizes imply. NCHW float32.

    `OneDNNConv(...)(x, w)`: x `[N, C, H, W]` -> y `[N, O, OH, OW]`; with `transpose`, the
    transposed convolution: x `[N, O, OH, OW]` -> y `[N, C, H, W]`, w the transposed layer's
    `[in, out, kh, kw]` (= the convolution's `[O, C, kh, kw]`).
    """

    def __init__(self, in_hw, out_hw, kernel, stride, pad, transpose: bool = False):
        super().__init__()
        self.transpose = transpose
        self.geometry = Tensor(np.array([*stride, *pad], np.int32))

        def op(name, shape):
            # PyNative caches a custom op's output shape by its name, attributes and input
            # shapes; the geometry's values (padding) also decide it, so they are an attribute.
            return native.custom_op(name, shape).add_prim_attr(
                "geometry", f"{in_hw} {out_hw} {kernel} {stride} {pad}")

        self.forward = op("ConvForward", _Shape(0, out_hw))
        self.backward_data = op("ConvBackwardData", _Shape(1, in_hw))
        self.backward_weights = op("ConvBackwardWeights", _WeightShape(kernel))

    def construct(self, x, w):
        if self.transpose:
            return self.backward_data(x, w, self.geometry)
        return self.forward(x, w, self.geometry)

    def bprop(self, x, w, out, dout):
        if self.transpose:  # x lives in Y, dout in X
            return (self.forward(dout, w, self.geometry),
                    self.backward_weights(dout, x, self.geometry))
        return (self.backward_data(dout, w, self.geometry),
                self.backward_weights(x, dout, self.geometry))


class _WeightShape:
    """dw `[O, C, kh, kw]` from x `[N, C, H, W]` and dy `[N, O, OH, OW]`."""

    def __init__(self, kernel):
        self.kernel = list(kernel)

    def __call__(self, x, dy, geometry):
        return [dy[1], x[1]] + self.kernel
