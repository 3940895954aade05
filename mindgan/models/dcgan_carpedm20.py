"""`dcgan-carpedm20`: carpedm20/DCGAN-tensorflow (model.py, ops.py), the networks of the
anime-face walkthrough ("--output_size 48"), at any output size of 16 pixels or more.

G: Linear(z → 8·gf·s16·s16, bias) → reshape to s16×s16×8gf (channels last, as TensorFlow's
NHWC) → BN → ReLU; four 5x5 stride-2 "same" transposed convolutions with biases to s8, s4, s2
and S pixels (4, 2, 1 gf, then c channels), BN + ReLU after each but the last, Tanh.
D: four 5x5 stride-2 "same" convolutions with biases to df, 2df, 4df, 8df channels, leaky
ReLU 0.2, BN on all but the first; flattened channels last; Linear(→1), a logit.
s_k = ceil(S / k) (its `conv_out_size_same`), so the transposed convolutions make TensorFlow's
`conv2d_transpose` output sizes, which at odd sizes are not input x 2 (50: 4, 7, 13, 25, 50).
BN as `tf.contrib.layers.batch_norm(decay=0.9, epsilon=1e-5, scale=True)` (gamma 1, beta 0);
convolution weights truncated normal σ 0.02 (at 2σ, as TensorFlow truncates), transposed
convolution and linear weights normal σ 0.02, biases 0. The channels-last reshape and flatten
keep the linear layers' weights in TensorFlow's order, so a TensorFlow checkpoint's weights map
one to one (transposing the kernels: benchmarks/carpedm20_vs_tensorflow.py).
"""
from __future__ import annotations

from mindspore import nn, ops
from mindspore.common.initializer import Normal, TruncatedNormal

from ..cpu import DEFAULT
from .family import Family
from .layers import (
    BatchNorm2d,
    Conv2d,
    Conv2dTranspose,
    Dense,
    LeakyReLU,
    ProjectedOutput,
    ReLU,
    Reshape,
    label_maps,
    one_hot,
)

# carpedm20's main.py defaults: batch 64, 25 epochs, Adam(2e-4, 0.5), 64x64 RGB output from a
# 108-pixel centre crop, z uniform in [-1, 1] ("uniform_signed"), G updated twice per D update
# on the same z, 64 samples (8x8).
PRESET = dict(epochs=25, batch_size=64, lr=2e-4, beta1=0.5, beta2=0.999, image_size=64, channels=3,
              num_samples=64, noise="uniform", g_steps=2, crop=108)

MIN_SIZE = 16
SIGMA = 0.02

__all__ = ["Generator", "Discriminator", "FAMILY", "sizes"]


def sizes(image_size: int) -> list[int]:
    """[S, s2, s4, s8, s16], s_k = ceil(S / k): [48, 24, 12, 6, 3], [50, 25, 13, 7, 4]."""
    return [-(-image_size // k) for k in (1, 2, 4, 8, 16)]


def _bn(width: int, native: bool):
    return BatchNorm2d(width, momentum=0.9, eps=1e-5, gamma_init="ones", beta_init="zeros", native=native)


class _Transpose(nn.Cell):
    """x -> x.transpose(perm): between TensorFlow's channels-last order and NCHW."""

    def __init__(self, perm):
        super().__init__()
        self.perm = tuple(perm)

    def construct(self, x):
        return ops.transpose(x, self.perm)


class Generator(nn.Cell):
    """z float32 `[N, latent]` (carpedm20: uniform in [-1, 1]) -> images float32 `[N, c, S, S]`
    in [-1, 1]. 5,135,363 trainable parameters at latent 100, gf 64, c 3, S 64; 4,773,379 at 48.
    Conditional (`spec.num_classes` K > 0): `G(z, y)`, the one-hot label joined to z (carpedm20
    also joins it to every hidden layer, in its MNIST-only model: not this one)."""

    def __init__(self, spec, kernels=DEFAULT):
        super().__init__()
        self.spec, self.latent_size = spec, spec.latent_size
        native, gf = kernels.native, spec.ngf
        s = sizes(spec.image_size)
        widths = [8 * gf, 4 * gf, 2 * gf, gf, spec.channels]
        self.num_classes = spec.num_classes
        layers = [nn.Dense(spec.latent_size + spec.num_classes, widths[0] * s[4] * s[4], weight_init=Normal(SIGMA),
                           bias_init="zeros"),
                  Reshape((s[4], s[4], widths[0])), _Transpose((0, 3, 1, 2)), _bn(widths[0], native), ReLU(native)]
        for k in range(4):
            layers.append(Conv2dTranspose(widths[k], widths[k + 1], 5, stride=2, pad_mode="same", has_bias=True,
                                          weight_init=Normal(SIGMA), bias_init="zeros", input_size=s[4 - k],
                                          output_size=s[3 - k], kernels=kernels))
            layers += [_bn(widths[k + 1], native), ReLU(native)] if k < 3 else [nn.Tanh()]
        self.model = nn.SequentialCell(layers)
        self.update_parameters_name("generator.")

    def construct(self, z, y=None):
        if self.num_classes:
            z = ops.concat((z, one_hot(y, self.num_classes)), 1)
        return self.model(z)


class Discriminator(nn.Cell):
    """images `[N, c, S, S]` in [-1, 1] -> logit float32 `[N, 1]` (P(real) = sigmoid).
    4,316,545 trainable parameters at df 64, c 3, S 64; 4,312,961 at 48. Conditional: `D(x, y)`,
    the one-hot label joined to the image as K constant channels (`layers.label_maps`)."""

    def __init__(self, spec, kernels=DEFAULT):
        super().__init__()
        self.spec = spec
        native, df = kernels.native, spec.ndf
        s = sizes(spec.image_size)
        self.num_classes = spec.num_classes
        self.projection, joined = spec.projected, spec.joined_labels
        widths = [spec.channels + joined, df, 2 * df, 4 * df, 8 * df]
        layers = []
        for k in range(4):
            layers.append(Conv2d(widths[k], widths[k + 1], 5, stride=2, pad_mode="same", has_bias=True,
                                 weight_init=TruncatedNormal(SIGMA, 0.0, -2 * SIGMA, 2 * SIGMA), bias_init="zeros",
                                 input_size=s[k], kernels=kernels, spectral_norm=spec.spectral_norm))
            layers += ([_bn(widths[k + 1], kernels.native_batch_norm)] if k else []) + [LeakyReLU(0.2, native=native)]
        features = s[4] * s[4] * widths[4]
        layers += [_Transpose((0, 2, 3, 1)), Reshape((features,))]
        head = Dense(features, 1, weight_init=Normal(SIGMA), bias_init="zeros", spectral_norm=spec.spectral_norm)
        if self.projection:
            self.top = ProjectedOutput(head, spec.num_classes, features, probability=False)
        else:
            layers.append(head)
        self.model = nn.SequentialCell(layers)
        self.update_parameters_name("discriminator.")

    def construct(self, x, y=None):
        if self.projection:
            return self.top(self.model(x), y)
        if self.num_classes:
            x = label_maps(x, y, self.num_classes)
        return self.model(x)


def check(spec) -> None:
    if spec.image_size < MIN_SIZE:
        raise ValueError(f"--image_size {spec.image_size}: the dcgan-carpedm20 family needs {MIN_SIZE} pixels "
                         f"or more (its four stride-2 layers)")
    if spec.ngf < 1 or spec.ndf < 1 or spec.channels < 1 or spec.latent_size < 1:
        raise ValueError(f"dcgan-carpedm20: latent size, channels, --ngf and --ndf must be positive ({spec})")


FAMILY = Family("dcgan-carpedm20", PRESET, "logit", Generator, Discriminator, check)
