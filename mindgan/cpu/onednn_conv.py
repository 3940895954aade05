"""2-D convolutions through the package's native oneDNN kernel, for MindSpore's CPU backend.

MindSpore 2.10 hands oneDNN plain NCHW tensors, for which oneDNN has only im2col + GEMM or, on
AVX-512 CPUs, a reference kernel (docs/PERFORMANCE.md). `csrc/onednn_conv.cc` calls the same
oneDNN with layouts of its own choosing, which gets its blocked direct / brgemm kernels
(PyTorch's), reordering NCHW in and out on each call. It runs as three MindSpore "aot" custom
operators: forward, input gradient and weight gradient; a transposed convolution is the input
gradient of the convolution it inverts, so one geometry serves both, with the other two as its
gradient, written in the three ops; the convolution's input and weight gradients carry theirs
in turn, so a loss on D's input gradient (a gradient penalty) can be differentiated once more.
Built by `native.library()`.
"""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops

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

    The gradients: F(x, w) the convolution, B(dy, w) its input gradient (the transposed
    convolution), W(x, dy) its weight gradient. Each is bilinear, so each one's gradient is
    made of the other two: F's is (B(g, w), W(x, g)); B's, for g shaped like X, is (F(g, w),
    W(g, dy)); W's, for g shaped like w, is (B(dy, g), F(x, g)). The convolution's gradient
    operators carry their own, so that a gradient penalty can differentiate D twice.
    """

    def __init__(self, in_hw, out_hw, kernel, stride, pad, transpose: bool = False):
        super().__init__()
        self.transpose = transpose
        self.geometry = Tensor(np.array([*stride, *pad], np.int32))
        shapes = {"ConvForward": _Shape(0, out_hw), "ConvBackwardData": _Shape(1, in_hw),
                  "ConvBackwardWeights": _WeightShape(kernel)}

        def op(name, bprop=None):
            # PyNative caches a custom op's output shape by its name, attributes and input
            # shapes; the geometry's values (padding) also decide it, so they are an attribute.
            return native.custom_op(name, shapes[name], bprop=bprop).add_prim_attr(
                "geometry", f"{in_hw} {out_hw} {kernel} {stride} {pad}")

        forward, data, weights = op("ConvForward"), op("ConvBackwardData"), op("ConvBackwardWeights")

        def data_bprop(dy, w, geometry, out, dout):
            return forward(dout, w, geometry), weights(dout, dy, geometry), ops.zeros_like(geometry)

        def weights_bprop(x, dy, geometry, out, dout):
            return data(dy, dout, geometry), forward(x, dout, geometry), ops.zeros_like(geometry)

        data2, weights2 = op("ConvBackwardData", data_bprop), op("ConvBackwardWeights", weights_bprop)

        def forward_bprop(x, w, geometry, out, dout):
            return data2(dout, w, geometry), weights2(x, dout, geometry), ops.zeros_like(geometry)

        def transposed_bprop(x, w, geometry, out, dout):  # x lives in Y, dout in X
            return forward(dout, w, geometry), weights(dout, x, geometry), ops.zeros_like(geometry)

        if transpose:
            self.op = op("ConvBackwardData", transposed_bprop)
        else:
            self.op = op("ConvForward", forward_bprop)

    def construct(self, x, w):
        return self.op(x, w, self.geometry)


class _WeightShape:
    """dw `[O, C, kh, kw]` from x `[N, C, H, W]` and dy `[N, O, OH, OW]`."""

    def __init__(self, kernel):
        self.kernel = list(kernel)

    def __call__(self, x, dy, geometry):
        return [dy[1], x[1]] + self.kernel
