"""Leaky ReLU, dropout and batch norm by the package's native CPU kernels (`csrc/elementwise.cc`).

`models.layers.LeakyReLU` is five graph ops forward and five backward, `models.layers.Dropout`'s
mask a dozen, each a pass over a whole feature map on MindSpore's CPU backend; one native pass
does either, bit for bit as the graph-op versions. MindSpore's fused batch norm runs on plain
NCHW far below memory speed. The layers use these when built with `native=True`, which the
families pass as `Kernels.native` (the "onednn" route: CPU, with the native library built).
docs/PERFORMANCE.md has the timings.
"""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops

from . import native

__all__ = ["NativeLeakyReLU", "NativeDropout", "NativeBatchNorm"]


def _same_shape(x, *others):
    return x


def _op(name: str, bprop=None):
    return native.custom_op(name, _same_shape, bprop=bprop)


class NativeLeakyReLU(nn.Cell):
    """x float32 (any shape) -> x > 0 ? x : slope * x. Its gradient (dy, x) -> dy · slope(x) is
    linear in dy and locally constant in x, so that gradient's own gradient is the same
    operator on the upstream gradient (and zero for x): a gradient penalty can differentiate
    it twice."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = Tensor(np.array([slope], np.float32))
        raw = _op("LeakyReluGrad")

        def backward_bprop(dy, x, slope, out, dout):
            return raw(dout, x, slope), ops.zeros_like(x), ops.zeros_like(slope)

        backward = _op("LeakyReluGrad", backward_bprop)

        def forward_bprop(x, slope, out, dout):
            return backward(dout, x, slope), ops.zeros_like(slope)

        self.forward = _op("LeakyRelu", forward_bprop)

    def construct(self, x):
        return self.forward(x, self.slope)


class NativeDropout(nn.Cell):
    """(x float32, state int32 `[4]` = (calls, salt, first index, threshold)) -> x * keep,
    keep = `scale` where the element's hash keeps it, else 0 (`layers.Dropout`'s mask). The
    gradient applies the same mask again, computed afresh (one pass, nothing kept), and so
    does the gradient's gradient."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = Tensor(np.array([scale], np.float32))
        raw = _op("Dropout")

        def again_bprop(x, state, scale, out, dout):
            return raw(dout, state, scale), ops.zeros_like(state), ops.zeros_like(scale)

        again = _op("Dropout", again_bprop)

        def bprop(x, state, scale, out, dout):
            return again(dout, state, scale), ops.zeros_like(state), ops.zeros_like(scale)

        self.apply = _op("Dropout", bprop)

    def construct(self, x, state):
        return self.apply(x, state, self.scale)


class _StatsShape:
    """[x's shape, [C], [C], ...]: `outputs` shapes, the first like x, the rest per channel."""

    def __init__(self, outputs: int):
        self.outputs = outputs

    def __call__(self, x, *others):
        return [x] + [[x[1]]] * (self.outputs - 1)


class NativeBatchNorm(nn.Cell):
    """Training-mode batch norm of x float32 `[N, C, H, W]`: (x, gamma `[C]`, beta `[C]`) ->
    (y, batch mean `[C]`, biased batch variance `[C]`), with its gradient (the statistics' own
    gradients are ignored: callers use them under stop_gradient). Its gradient has no
    gradient: a discriminator under a gradient penalty uses MindSpore's batch norm
    (`Kernels.second_order`)."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = Tensor(np.array([eps], np.float32))
        backward = native.custom_op("BatchNormTrainingGrad", _StatsShape(3), outputs=3)

        def bprop(x, gamma, beta, eps, out, dout):
            dx, dgamma, dbeta = backward(dout[0], x, gamma, out[1], out[2], eps)
            return dx, dgamma, dbeta, ops.zeros_like(eps)

        self.forward = native.custom_op("BatchNormTraining", _StatsShape(3), outputs=3, bprop=bprop)

    def construct(self, x, gamma, beta):
        return self.forward(x, gamma, beta, self.eps)
