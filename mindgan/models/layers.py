"""Layers shared by the model families, in forms that are cheap on MindSpore's CPU backend.

Each computes what the stock MindSpore layer computes (same parameters and names, results to
float rounding), so every checkpoint loads into either. How the convolutions and the native
elementwise kernels compute is the `mindgan.cpu.Kernels` a layer is given when it is built
(nothing is read from the environment here); inference mode always uses graph ops, so
exported graphs hold standard nodes.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from ..cpu import DEFAULT, Kernels
from ..cpu.conv import plan_convolution

__all__ = ["mix32", "one_hot", "label_maps", "LabelProjection", "ProjectedOutput", "BatchNorm1d", "BatchNorm2d",
           "LeakyReLU", "ReLU", "Dropout", "SpectralNorm", "Dense", "Reshape", "WholeInputConv2d",
           "WholeInputConv2dTranspose", "Conv2d", "Conv2dTranspose"]


def one_hot(y, num_classes: int):
    """labels int32 `[N]` in 0..num_classes-1 -> float32 `[N, num_classes]` (a label joined to
    z or to D's input: into a Dense layer it is a learned embedding of the class)."""
    return ops.one_hot(y, num_classes, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))


def label_maps(x, y, num_classes: int):
    """images `[N, C, H, W]` and labels int32 `[N]` -> `[N, C + num_classes, H, W]`: the one-hot
    label as constant feature maps after the image's channels (carpedm20's `conv_cond_concat`)."""
    maps = ops.broadcast_to(one_hot(y, num_classes).reshape(x.shape[0], num_classes, 1, 1),
                            (x.shape[0], num_classes, x.shape[2], x.shape[3]))
    return ops.concat((x, maps), 1)


class LabelProjection(nn.Cell):
    """The projection discriminator's class term (Miyato & Koyama 2018): <E[y], h>, a learned
    embedding of the label dotted with D's last features. h float32 `[N, F]`, y int32 `[N]`
    -> `[N, 1]`, added to D's unconditional logit. The embedding is a one-hot MatMul (its
    gradient a MatMul too, not a scatter)."""

    def __init__(self, num_classes: int, features: int):
        super().__init__()
        from mindspore.common.initializer import Normal, initializer

        self.num_classes = num_classes
        self.embedding = Parameter(initializer(Normal(0.02), [num_classes, features], ms.float32), name="embedding")

    def construct(self, h, y):
        e = ops.matmul(one_hot(y, self.num_classes), self.embedding)
        return (e * h).sum(1, keepdims=True)


class ProjectedOutput(nn.Cell):
    """A projection discriminator's output: `head(h)` (D's own last layer, to one logit per
    image) plus `LabelProjection` of the flattened h, then a Sigmoid for a D that gives
    probabilities. h float32 `[N, ...]` (`features` values per image), y int32 `[N]` ->
    `[N, 1]`."""

    def __init__(self, head: nn.Cell, num_classes: int, features: int, probability: bool):
        super().__init__()
        self.head, self.project = head, LabelProjection(num_classes, features)
        self.output = nn.Sigmoid() if probability else nn.Identity()

    def construct(self, h, y):
        flat = ops.reshape(h, (h.shape[0], -1))
        return self.output(ops.reshape(self.head(h), (-1, 1)) + self.project(flat, y))


def _update_running_statistics(bn, mean, var, n):
    """A batch norm's running statistics after a batch of `n` values per channel with (biased)
    `var`, as MindSpore's kernel updates them: the new batch weighted by `bn.momentum` (MindSpore
    stores 1 - momentum), the variance unbiased."""
    m = bn.momentum
    ops.assign(bn.moving_mean, bn.moving_mean * (1.0 - m) + ops.stop_gradient(mean) * m)
    ops.assign(bn.moving_variance, bn.moving_variance * (1.0 - m)
               + ops.stop_gradient(var) * (m * n / (n - 1)))


class BatchNorm1d(nn.BatchNorm1d):
    """`nn.BatchNorm1d` with the same parameters and results (to float rounding), whose
    training-mode forward is written in sums and elementwise ops. x float32 `[N, C]`.

    MindSpore 2.10's fused BatchNorm kernel on CPU is slow per channel (a quarter of the MLP's
    step; README, "Speed"); these ops compile to the same math in a fraction of that, on any
    device. Inference mode is the parent's fused kernel, so exported
    graphs keep a plain BatchNorm node. Like the parent: normalises with the biased batch
    variance and updates the running variance with the unbiased one.

    Under data parallelism (`parallel.shard`), the statistics are those of the global batch: the sums
    are all-reduced over the workers (two vectors of C floats), whose gradient flows back
    through the all-reduce, so W workers compute what one process with the whole batch does.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workers = 1

    def use_workers(self, rank: int, workers: int) -> None:
        """Sum the batch statistics over `workers` data-parallel workers."""
        self.workers = workers
        self.all_reduce = ops.AllReduce()

    def _batch_sum(self, x):
        s = x.sum(0)
        return self.all_reduce(s) if self.workers > 1 else s

    def construct(self, x):
        if not self.training:
            return super().construct(x)
        n = x.shape[0] * self.workers
        # sum * (1/n), not mean: ReduceMean over the batch axis is several times slower on CPU.
        mean = self._batch_sum(x) * (1.0 / n)
        centred = x - mean
        var = self._batch_sum(centred * centred) * (1.0 / n)
        _update_running_statistics(self, mean, var, n)
        return centred * (ops.rsqrt(var + self.eps) * self.gamma) + self.beta


class BatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` (same parameters, results to float rounding). With `native`, the
    training-mode forward and backward are one native kernel each (`cpu.elementwise`), the
    running statistics updated here as the parent does (the new batch weighted by
    1 - momentum, the unbiased variance), because MindSpore's fused kernel runs on plain NCHW
    at a fraction of memory speed on CPU. Inference mode is the parent's kernel. x float32
    `[N, C, H, W]`."""

    def __init__(self, *args, native: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.native = native
        if self.native:
            from ..cpu.elementwise import NativeBatchNorm

            self.op = NativeBatchNorm(self.eps)

    def construct(self, x):
        if not self.training or not self.native:
            return super().construct(x)
        # `* 1.0`: read the parameters in the graph's order of updates (see _matmul_construct)
        y, mean, var = self.op(x, self.gamma * 1.0, self.beta * 1.0)
        _update_running_statistics(self, mean, var, x.shape[0] * x.shape[2] * x.shape[3])
        return y


class LeakyReLU(nn.LeakyReLU):
    """`nn.LeakyReLU` as relu(x) - alpha * relu(-x): the same values and gradients bit for bit
    (except the subgradient at exactly 0), but the gradient is two ReLU masks instead of the
    Maximum gradient's Select/compare chain, which costs more on CPU.

    With `native` (for large tensors: convolutional feature maps), in training one native
    kernel each way (`cpu.elementwise`), with the same results bit for bit; inference (and so
    export) keeps the graph ops."""

    def __init__(self, alpha: float = 0.2, native: bool = False):
        super().__init__(alpha)
        self.native = native
        if self.native:
            from ..cpu.elementwise import NativeLeakyReLU

            self.op = NativeLeakyReLU(alpha)

    def construct(self, x):
        if self.native and self.training:
            return self.op(x)
        return ops.relu(x) - self.alpha * ops.relu(-x)


class ReLU(nn.ReLU):
    """`nn.ReLU`; with `native`, in training the native kernel each way (`LeakyReLU`'s at slope
    0). Same values; gradients equal up to the sign of zeros. Inference (and so export) keeps
    the stock op."""

    def __init__(self, native: bool = False):
        super().__init__()
        self.native = native
        if self.native:
            from ..cpu.elementwise import NativeLeakyReLU

            self.op = NativeLeakyReLU(0.0)

    def construct(self, x):
        if self.native and self.training:
            return self.op(x)
        return super().construct(x)


def mix32(h, shift):
    """A 32-bit multiply-xorshift mix of uint32 `h` (wrapping; the native dropout kernel's);
    `shift` an `ops.RightShift()`. The randomness of `Dropout` and `augment.DiffAugment`."""
    h = ops.bitwise_xor(h, shift(h, Tensor(16, ms.uint32)))
    h = h * Tensor(0x7FEB352D, ms.uint32)
    h = ops.bitwise_xor(h, shift(h, Tensor(15, ms.uint32)))
    h = h * Tensor(0x846CA68B, ms.uint32)
    return ops.bitwise_xor(h, shift(h, Tensor(16, ms.uint32)))


def counted_uniform(calls, salt: int, multiplier: int, first, count: int, shift):
    """U[0, 1) float32 `[count]`, no gradient: a 24-bit hash of (call counter `calls`, `salt`,
    element index first ... first + count - 1), the randomness of DiffAugment and of WGAN-GP's
    interpolation (`multiplier` keeps their streams apart); `shift` an `ops.RightShift()`."""
    seed = mix32(calls.astype(ms.int32).astype(ms.uint32) * Tensor(multiplier, ms.uint32)
                 + Tensor(salt, ms.uint32), shift)
    index = ops.arange(first, first + count, dtype=ms.int32).astype(ms.uint32)
    h = mix32(index * Tensor(0x9E3779B1, ms.uint32) + seed, shift)
    top = shift(h, Tensor(8, ms.uint32))  # 24 bits: exact in float32
    return ops.stop_gradient(top.astype(ms.float32) * (1.0 / (1 << 24)))


class Dropout(nn.Cell):
    """Inverted dropout (`nn.Dropout(p)`'s math) whose masks are a pure function of a call
    counter and the element index, so a resumed run draws exactly the masks it would have.

    MindSpore's own dropout kernels keep their random state inside the kernel, out of reach of
    a checkpoint. Here the state is one non-trainable Parameter, `calls`, saved with the
    network's weights and advanced by one per training-mode call; the mask keeps an element
    where the top 24 bits of a 32-bit integer hash of (element index, calls, `salt`) are at
    least p * 2^24. Integer arithmetic: the same masks on every device. (Up to mindgan 0.2.0 the
    masks came from a sine hash: a run resumed across that change draws different, equally
    random, masks.) With `native`, x * mask is one native kernel each way (`cpu.elementwise`),
    bit for bit the same. Inference mode is the identity.
    """

    def __init__(self, p: float, salt: int = 0, native: bool = False):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), not {p}")
        self.p, self.salt = float(p), int(salt) % (1 << 31)
        self.threshold = int(self.p * (1 << 24))
        self.scale = float(np.float32(1.0 / (1.0 - self.p)))
        self.calls = Parameter(Tensor(0.0, ms.float32), name="calls", requires_grad=False)
        self.rank = 0  # a data-parallel worker's masks are its slice of the global batch's
        self.shift = ops.RightShift()
        self.native = native
        if self.native:
            from ..cpu.elementwise import NativeDropout

            self.op = NativeDropout(self.scale)

    def use_workers(self, rank: int, workers: int) -> None:
        """Index elements by their place in the global batch of `workers` equal slices."""
        self.rank = rank

    def _mix(self, h):
        return mix32(h, self.shift)

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        calls = self.calls * 1.0
        ops.assign(self.calls, calls + 1.0)
        first = self.rank * x.size
        if self.native:
            state = ops.concat((calls.astype(ms.int32).reshape(1),
                                ms.Tensor([self.salt, first, self.threshold], ms.int32)))
            return self.op(x, state)
        calls_u = calls.astype(ms.int32).astype(ms.uint32)
        seed = self._mix(calls_u * Tensor(0x85EBCA77, ms.uint32) + Tensor(self.salt, ms.uint32))
        index = ops.arange(first, first + x.size, dtype=ms.int32).astype(ms.uint32)
        h = self._mix(index.reshape(x.shape) * Tensor(0x9E3779B1, ms.uint32) + seed)
        top = self.shift(h, Tensor(8, ms.uint32))
        keep = (top >= Tensor(self.threshold, ms.uint32)).astype(x.dtype) * self.scale
        return x * ops.stop_gradient(keep)

    def extend_repr(self):
        return f"p={self.p}"


class Reshape(nn.Cell):
    """x `[N, ...]` -> `[N, *shape]`, as a layer of a SequentialCell."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def construct(self, x):
        return ops.reshape(x, (-1,) + self.shape)

    def extend_repr(self):
        return f"shape={self.shape}"


class SpectralNorm(nn.Cell):
    """`sn(w)` = w / sigma(w), sigma the largest singular value of w seen as `[out, rest]`,
    estimated by one power iteration per training-mode call (Miyato et al. 2018, as PyTorch's
    `spectral_norm`): v = normalise(w^T u), u <- normalise(w v), sigma = u^T w v, no gradient
    through u and v. u is a non-trainable Parameter, saved with the network, so a resumed run
    continues its iteration exactly. In inference mode u is used as it stands."""

    def __init__(self, out_features: int, eps: float = 1e-12):
        super().__init__()
        from mindspore.common.initializer import Normal, initializer

        self.eps = eps
        self.u = Parameter(initializer(Normal(1.0), [out_features], ms.float32), name="u", requires_grad=False)

    def _normalise(self, x):
        return x / (ops.sqrt((x * x).sum()) + self.eps)

    def construct(self, w):
        mat = w.reshape(w.shape[0], -1)
        u = ops.stop_gradient(self._normalise(self.u * 1.0))
        v = ops.stop_gradient(self._normalise(ops.matmul(u.reshape(1, -1), mat).reshape(-1)))
        if self.training:
            u = ops.stop_gradient(self._normalise(ops.matmul(mat, v.reshape(-1, 1)).reshape(-1)))
            ops.assign(self.u, u)
        sigma = (u * ops.matmul(mat, v.reshape(-1, 1)).reshape(-1)).sum()
        return w / sigma


class Dense(nn.Dense):
    """`nn.Dense`; with `spectral_norm`, its weight divided by its largest singular value
    (`SpectralNorm`). x `[N, in]`."""

    def __init__(self, *args, spectral_norm: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.normalised = spectral_norm
        if spectral_norm:
            self.sn = SpectralNorm(self.out_channels)

    def construct(self, x):
        if not self.normalised:
            return super().construct(x)
        y = ops.matmul(x, self.sn(self.weight).T)
        return ops.bias_add(y, self.bias) if self.has_bias else y


class WholeInputConv2d(nn.Conv2d):
    """`nn.Conv2d` for a kernel that covers its whole input (`pad_mode="valid"`, stride 1,
    x `[N, C, k, k]` -> `[N, O, 1, 1]`, as DCGAN's last discriminator layer), computed as the
    MatMul it is, x `[N, C·k·k]` @ weight `[O, C·k·k]`^T, unless `kernels.rewrites` is off.
    Same parameters (names, shapes) and results to float rounding; on CPUs, oneDNN runs this
    shape of convolution (one output pixel, one output channel) with its reference kernel."""

    def __init__(self, *args, kernels: Kernels = DEFAULT, spectral_norm: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.stock = not kernels.rewrites
        self.normalised = spectral_norm
        if spectral_norm:
            self.sn = SpectralNorm(self.out_channels)

    def construct(self, x):
        if self.normalised:
            weight = self.sn(self.weight)
            if self.stock:
                y = self.conv2d(x, weight)
                return self.bias_add(y, self.bias) if self.has_bias else y
        elif self.stock:
            return super().construct(x)
        else:
            weight = self.weight
        w = ops.reshape(weight, (self.out_channels, -1))
        y = ops.matmul(ops.reshape(x, (x.shape[0], -1)), w.T)
        if self.has_bias:
            y = y + self.bias
        return ops.reshape(y, (-1, self.out_channels, 1, 1))


class WholeInputConv2dTranspose(nn.Conv2dTranspose):
    """`nn.Conv2dTranspose` from a 1x1 input (`pad_mode="valid"`, stride 1: x `[N, C, 1, 1]` ->
    `[N, O, k, k]`, DCGAN's first generator layer) as the MatMul it is, x `[N, C]` @ weight
    `[C, O·k·k]`, unless `kernels.rewrites` is off. Same parameters and results to float
    rounding, on every device; on CPUs it avoids oneDNN's transposed convolution (a reference
    kernel on AVX-512)."""

    def __init__(self, *args, kernels: Kernels = DEFAULT, **kwargs):
        super().__init__(*args, **kwargs)
        self.stock = not kernels.rewrites

    def construct(self, x):
        if self.stock:
            return super().construct(x)
        w = ops.reshape(self.weight, (self.in_channels, -1))
        y = ops.reshape(ops.matmul(ops.reshape(x, (x.shape[0], -1)), w),
                        (-1, self.out_channels) + tuple(self.kernel_size))
        if self.has_bias:
            y = y + ops.reshape(self.bias, (1, -1, 1, 1))
        return y


class _RoutedConvolution:
    """What `Conv2d` and `Conv2dTranspose` share: a route (`kernels.conv`) and the op planned
    for it (`cpu.conv.plan_convolution`). NCHW in and out; pixel rows `[N, H·W, C]` inside on the MatMul route.
    (Each subclass writes its own four-line `construct`: `super().construct()` called from a
    mixin's construct recurses forever in graph mode.)"""

    def _choose_route(self, input_size, transpose: bool, kernels: Kernels, output_size=None) -> None:
        """Plan the convolution for inputs of `input_size` pixels on `kernels.conv`'s route."""
        self.route = kernels.conv
        self.stock = self.route == "stock"
        self.out_hw, self.op = plan_convolution(self, input_size, transpose, self.route, output_size)

    def _routed_construct(self, x, w=None):
        """The layer on its route; `w` a weight to use instead of its own (spectral norm)."""
        if self.route == "onednn":
            # `* 1.0`: as in _matmul_construct
            y = self.op(x, self.weight * 1.0 if w is None else w)
            return ops.bias_add(y, self.bias) if self.has_bias else y
        return self._matmul_construct(x, w)

    def _matmul_construct(self, x, w=None):
        n, c = x.shape[0], x.shape[1]
        rows = x.transpose(0, 2, 3, 1).reshape(n, x.shape[2] * x.shape[3], c)
        # `* 1.0` reads the weight here, in the order of the graph's side effects: handed to the
        # custom-bprop op as a bare Parameter, it was read before an optimizer update earlier
        # in the same compiled step (G's update then saw D's old weights).
        y = self.op(rows, self.weight * 1.0 if w is None else w)
        if self.has_bias:
            y = y + self.bias
        return y.reshape((n,) + self.out_hw + (self.out_channels,)).transpose(0, 3, 1, 2)


class Conv2d(nn.Conv2d, _RoutedConvolution):
    """`nn.Conv2d` (same parameters, results to float rounding) for inputs of `input_size`
    pixels, computed on the route `kernels.conv`: by the native oneDNN kernel, as gather +
    MatMul, or by the stock kernel. No dilation or groups. x `[N, C, H, W]` float32. With
    `spectral_norm`, its weight divided by its largest singular value (`SpectralNorm`)."""

    def __init__(self, *args, input_size, kernels: Kernels = DEFAULT, spectral_norm: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._choose_route(input_size, False, kernels)
        self.normalised = spectral_norm
        if spectral_norm:
            self.sn = SpectralNorm(self.out_channels)

    def construct(self, x):
        if self.normalised:
            w = self.sn(self.weight)
            if self.stock:
                y = self.conv2d(x, w)
                return self.bias_add(y, self.bias) if self.has_bias else y
            return self._routed_construct(x, w)
        if self.stock:
            return super().construct(x)
        return self._routed_construct(x)


class Conv2dTranspose(nn.Conv2dTranspose, _RoutedConvolution):
    """`nn.Conv2dTranspose` (same parameters, results to float rounding) for inputs of
    `input_size` pixels, computed as the input gradient of the convolution it inverts, on the
    route `kernels.conv` (native oneDNN, gather + MatMul, or the stock kernel). No dilation or
    groups. x `[N, C, H, W]` float32.

    `output_size` (pad_mode "same" only): output pixels other than input x stride, as
    TensorFlow's `conv2d_transpose(output_shape=...)` makes them (13 -> 25 at stride 2: the
    input gradient of the "same" convolution from 25 pixels, padded 2 before and 2 after). The
    stock kernel takes that output shape as it is (MindSpore pads as TensorFlow does)."""

    def __init__(self, *args, input_size, kernels: Kernels = DEFAULT, output_size=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._choose_route(input_size, True, kernels, output_size)
        self.shaped = output_size is not None

    def construct(self, x):
        if self.stock and self.shaped:
            y = self.conv2d_transpose(x, self.weight, (x.shape[0], self.out_channels) + self.out_hw)
            return self.bias_add(y, self.bias) if self.has_bias else y
        if self.stock:
            return super().construct(x)
        return self._routed_construct(x)
