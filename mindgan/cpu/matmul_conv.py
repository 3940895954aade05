"""2-D convolutions as gather + MatMul, for MindSpore's CPU backend (the "matmul" route).

MindSpore 2.10 runs CPU convolutions through oneDNN on plain NCHW tensors: im2col + GEMM under
AVX2 and, on AVX-512 CPUs, a reference kernel for the input gradient and the transposed
convolution, while its MatMul, uncapped, is fast. So here a convolution is what oneDNN's gemm
path does, written in graph ops that reach that MatMul:

- forward: im2col as one Gather of pixel rows (`[N, H·W, C]`, channels last, with one zero row
  for the padding), then `[N·OH·OW, kh·kw·C] @ [kh·kw·C, O]`;
- input gradient (= the transposed convolution): for each of the stride² output phases, one
  Gather of the taps that reach it and one MatMul, then one Gather to put the pixels in order.
  No zeros are multiplied (zero-insertion would waste 3/4 of the work at stride 2). For a
  narrow input (an RGB image), one MatMul of every tap first, then a Gather-and-add per tap;
- weight gradient: im2col(x)^T @ dy, one MatMul.

`ConvOp` (either way round) has a custom bprop made of the other two, so autodiff never
differentiates a Gather (its gradient, a scatter-add, is several times slower on CPU). The index
tables are fixed at construction from the input size, as the families know it from their spec.
On GPU/Ascend the stock cells' native kernels are the right ones, and on CPUs without AVX-512
(or with oneDNN capped below it) oneDNN's own gemm convolutions are faster: `models.layers`
uses this module only on the route `mindgan.cpu.convolution_route` chooses ("matmul").
docs/PERFORMANCE.md has the measurements.
"""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops

__all__ = ["ConvGeometry", "ConvOp", "same_padding"]

NARROW = 32  # input channels below which the input gradient multiplies first, then gathers


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of a "same" convolution of `size` pixels: output ceil(size /
    stride), the odd pixel after (TensorFlow's and MindSpore's rule)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _with_zero_row(x):
    """`[N, L, C]` -> `[N, L + 1, C]`, the last row zeros (the index of every padded tap).
    A Concat: MindSpore's CPU Pad kernel took 20x longer."""
    return ops.concat((x, ops.zeros((x.shape[0], 1, x.shape[2]), x.dtype)), 1)


class ConvGeometry(nn.Cell):
    """A convolution from X (`in_hw` pixels, C channels) to Y (`out_hw`, O channels): weight
    `[O, C, kh, kw]` (C = `in_channels`), `stride`, padding `pad` (top, left) before X.
    Tensors are pixel rows, channels last: x float32 `[N, H·W, C]`, y `[N, OH·OW, O]`.

    `forward(x, w)` -> y; `backward_data(dy, w)` -> dx (the transposed convolution);
    `backward_weight(x, dy)` -> dw `[O, C, kh, kw]`.
    """

    def __init__(self, in_hw, out_hw, kernel, stride, pad, in_channels: int):
        super().__init__()
        (h, w), (oh, ow), (kh, kw), (s, t), (pt, pl) = in_hw, out_hw, kernel, stride, pad
        self.kernel, self.out_pixels, self.in_pixels = (kh, kw), oh * ow, h * w
        self.cols = Tensor(self._im2col_index(h, w, oh, ow, kh, kw, s, t, pt, pl))
        self.matmul_ta = ops.MatMul(transpose_a=True)
        # The input gradient's MatMuls are C columns wide by phase; for a narrow C (an RGB
        # image: 3) MatMul wastes most of its time, so multiply first and gather the products:
        # Narrow outputs (the image side) favour multiplying first; wide ones the phases
        # (docs/PERFORMANCE.md, "Convolutions as gather + MatMul").
        self.scatter = in_channels < NARROW
        if self.scatter:
            self.slots = self._col2im_index(h, w, oh, ow, kh, kw, s, t, pt, pl)
            return
        self.phases = []
        rows = []
        for a in range(s):
            for b in range(t):
                pixels = [(y, x) for y in range(a, h, s) for x in range(b, w, t)]
                if not pixels:
                    continue
                taps, index = self._phase_index(pixels, oh, ow, kh, kw, s, t, pt, pl)
                self.phases.append((len(pixels), len(taps), Tensor(np.array(taps, np.int32)),
                                    Tensor(index)))
                rows += [y * w + x for y, x in pixels]
        order = np.argsort(np.array(rows)).astype(np.int32)
        self.in_order = None if (order == np.arange(len(order))).all() else Tensor(order)

    @staticmethod
    def _im2col_index(h, w, oh, ow, kh, kw, s, t, pt, pl) -> np.ndarray:
        """`[OH·OW·kh·kw]` int32: the X row each output pixel's tap reads; H·W (the zero row)
        where the tap falls in the padding."""
        y = np.arange(oh)[:, None] * s + np.arange(kh)[None, :] - pt        # [oh, kh]
        x = np.arange(ow)[:, None] * t + np.arange(kw)[None, :] - pl        # [ow, kw]
        inside = ((y >= 0) & (y < h))[:, None, :, None] & ((x >= 0) & (x < w))[None, :, None, :]
        index = y[:, None, :, None] * w + x[None, :, None, :]
        return np.where(inside, index, h * w).astype(np.int32).reshape(-1)

    @staticmethod
    def _phase_index(pixels, oh, ow, kh, kw, s, t, pt, pl):
        """For X pixels of one stride phase: the taps (i·kw + j) that can reach them, and
        `[pixels·taps]` int32 Y rows they read (OH·OW, the zero row, outside Y)."""
        a, b = pixels[0][0] % s, pixels[0][1] % t
        candidates = [(i, j) for i in range(kh) for j in range(kw)
                      if (a + pt - i) % s == 0 and (b + pl - j) % t == 0]
        index = np.full((len(pixels), len(candidates)), oh * ow, np.int64)
        for p, (y, x) in enumerate(pixels):
            for k, (i, j) in enumerate(candidates):
                oy, ox = (y + pt - i) // s, (x + pl - j) // t
                if 0 <= oy < oh and 0 <= ox < ow:
                    index[p, k] = oy * ow + ox
        used = (index != oh * ow).any(0)      # taps that fall outside Y for every pixel go
        taps = [i * kw + j for (i, j), u in zip(candidates, used) if u]
        return taps, index[:, used].astype(np.int32).reshape(-1)

    @staticmethod
    def _col2im_index(h, w, oh, ow, kh, kw, s, t, pt, pl) -> list:
        """S int32 `[H·W]` tables, S the most taps that reach one X pixel: slot k of pixel p
        reads row (Y pixel·kh·kw + tap) of the per-tap products, or the zero row after them."""
        slots = [[] for _ in range(h * w)]
        for oy in range(oh):
            for i in range(kh):
                y = oy * s + i - pt
                for ox in range(ow):
                    for j in range(kw):
                        x = ox * t + j - pl
                        if 0 <= y < h and 0 <= x < w:
                            slots[y * w + x].append((oy * ow + ox) * kh * kw + i * kw + j)
        table = np.full((h * w, max(map(len, slots))), oh * ow * kh * kw, np.int32)
        for p, taps in enumerate(slots):
            table[p, :len(taps)] = taps
        return [Tensor(np.ascontiguousarray(table[:, k])) for k in range(table.shape[1])]

    def _im2col(self, x):
        """x `[N, H·W, C]` -> `[N·OH·OW, kh·kw·C]`."""
        cols = ops.gather(_with_zero_row(x), self.cols, 1)
        return cols.reshape(-1, self.kernel[0] * self.kernel[1] * x.shape[2])

    def forward(self, x, w):
        o = w.shape[0]
        wm = w.transpose(2, 3, 1, 0).reshape(-1, o)        # [kh·kw·C, O]
        return ops.matmul(self._im2col(x), wm).reshape(-1, self.out_pixels, o)

    def backward_data(self, dy, w):
        o, c = w.shape[0], w.shape[1]
        if self.scatter:
            wm = w.transpose(0, 2, 3, 1).reshape(o, -1)    # [O, kh·kw·C]
            products = ops.matmul(dy.reshape(-1, o), wm).reshape(dy.shape[0], -1, c)
            products = _with_zero_row(products)
            return ops.addn([ops.gather(products, slot, 1) for slot in self.slots])
        padded = _with_zero_row(dy)
        wk = w.transpose(2, 3, 0, 1).reshape(-1, o, c)     # [kh·kw, O, C]
        parts = []
        for pixels, taps, tap_index, rows in self.phases:
            if taps == 0:
                parts.append(ops.zeros((dy.shape[0], pixels, c), dy.dtype))
                continue
            cols = ops.gather(padded, rows, 1).reshape(-1, taps * o)
            wsub = ops.gather(wk, tap_index, 0).reshape(taps * o, c)
            parts.append(ops.matmul(cols, wsub).reshape(-1, pixels, c))
        dx = parts[0] if len(parts) == 1 else ops.concat(parts, 1)
        return dx if self.in_order is None else ops.gather(dx, self.in_order, 1)

    def backward_weight(self, x, dy):
        o, c = dy.shape[2], x.shape[2]
        dwm = self.matmul_ta(self._im2col(x), dy.reshape(-1, o))   # [kh·kw·C, O]
        return dwm.reshape(self.kernel[0], self.kernel[1], c, o).transpose(3, 2, 0, 1)


class ConvOp(nn.Cell):
    """The convolution of `geometry` on pixel rows, with its gradients as a custom bprop:
    y = conv(x, w), or with `transpose` y = conv_transpose(x, w), where x lives in the
    geometry's Y and y in its X, and w is the convolution's weight `[O, C, kh, kw]` (a
    transposed convolution's `[in, out, kh, kw]`)."""

    def __init__(self, geometry: ConvGeometry, transpose: bool = False):
        super().__init__()
        self.geometry, self.transpose = geometry, transpose

    def construct(self, x, w):
        if self.transpose:
            return self.geometry.backward_data(x, w)
        return self.geometry.forward(x, w)

    def bprop(self, x, w, out, dout):
        if self.transpose:
            return self.geometry.forward(dout, w), self.geometry.backward_weight(dout, x)
        return self.geometry.backward_data(dout, w), self.geometry.backward_weight(x, dout)
