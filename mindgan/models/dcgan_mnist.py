"""`dcgan-mnist`: TensorFlow's DCGAN tutorial on MNIST (28x28x1).

G: Dense(nz→7·7·256, no bias) → BN → LeakyReLU; reshape to 256×7×7; ConvTranspose(256→128, 5,
stride 1, same) → BN → LeakyReLU; ConvTranspose(128→64, 5, 2, same) → BN → LeakyReLU;
ConvTranspose(64→nc, 5, 2, same) → Tanh; no biases. D: Conv(nc→64, 5, 2, same) → LeakyReLU →
Dropout(0.3); Conv(64→128, 5, 2, same) → LeakyReLU → Dropout(0.3); Flatten; Dense(→1), a logit.
Keras's defaults where the tutorial leaves them: LeakyReLU slope 0.3, BatchNorm momentum 0.99
and epsilon 1e-3, Glorot-uniform weights, zero biases. The image side is a multiple of 4
(28 by default); the widths scale with --ngf/--ndf (64 each, as the tutorial).
"""
from __future__ import annotations

from mindspore import nn, ops

from ..cpu import DEFAULT
from .family import Family
from .layers import (
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Conv2dTranspose,
    Dense,
    Dropout,
    LeakyReLU,
    ProjectedOutput,
    Reshape,
    label_maps,
    one_hot,
)

# The tutorial's hyper-parameters: batch 256, 50 epochs, Adam(1e-4) with Keras's beta1 0.9,
# 16 fixed samples in a 4x4 grid.
PRESET = dict(epochs=50, batch_size=256, lr=1e-4, beta1=0.9, beta2=0.999,
              image_size=28, channels=1, num_samples=16)

SLOPE, MOMENTUM, EPS, DROPOUT = 0.3, 0.99, 1e-3, 0.3

__all__ = ["Generator", "Discriminator", "FAMILY"]


def _bn2d(width, native: bool):
    return BatchNorm2d(width, momentum=MOMENTUM, eps=EPS, native=native)


class Generator(nn.Cell):
    """z float32 `[N, latent]` -> images float32 `[N, nc, S, S]` in [-1, 1].
    2,305,472 trainable parameters at latent 100, ngf 64, `[1, 28, 28]`. Conditional
    (`spec.num_classes` K > 0): `G(z, y)`, the one-hot label joined to z."""

    def __init__(self, spec, kernels=DEFAULT):
        super().__init__()
        self.spec, self.latent_size = spec, spec.latent_size
        latent_size, channels, native = spec.latent_size, spec.channels, kernels.native
        side, w = spec.image_size // 4, spec.ngf
        self.num_classes = spec.num_classes
        self.model = nn.SequentialCell(
            nn.Dense(latent_size + spec.num_classes, 4 * w * side * side, has_bias=False, weight_init="xavier_uniform"),
            BatchNorm1d(4 * w * side * side, momentum=MOMENTUM, eps=EPS),
            LeakyReLU(SLOPE, native=native),
            Reshape((4 * w, side, side)),
            Conv2dTranspose(4 * w, 2 * w, 5, stride=1, pad_mode="same", has_bias=False,
                            weight_init="xavier_uniform", input_size=side, kernels=kernels),
            _bn2d(2 * w, native), LeakyReLU(SLOPE, native=native),
            Conv2dTranspose(2 * w, w, 5, stride=2, pad_mode="same", has_bias=False,
                            weight_init="xavier_uniform", input_size=side, kernels=kernels),
            _bn2d(w, native), LeakyReLU(SLOPE, native=native),
            Conv2dTranspose(w, channels, 5, stride=2, pad_mode="same", has_bias=False,
                            weight_init="xavier_uniform", input_size=2 * side, kernels=kernels),
            nn.Tanh(),
        )
        self.update_parameters_name("generator.")

    def construct(self, z, y=None):
        if self.num_classes:
            z = ops.concat((z, one_hot(y, self.num_classes)), 1)
        return self.model(z)


class Discriminator(nn.Cell):
    """images `[N, nc, S, S]` in [-1, 1] -> logit float32 `[N, 1]` (P(real) = sigmoid).
    212,865 trainable parameters at ndf 64, `[1, 28, 28]`. Conditional: `D(x, y)`, the one-hot
    label joined to the image as K constant channels (`layers.label_maps`)."""

    def __init__(self, spec, kernels=DEFAULT):
        super().__init__()
        self.spec = spec
        channels, image_size, native = spec.channels, spec.image_size, kernels.native
        side, w = image_size // 4, spec.ndf
        self.num_classes = spec.num_classes
        self.projection, joined = spec.projected, spec.joined_labels
        sn = spec.spectral_norm
        self.model = nn.SequentialCell(
            Conv2d(channels + joined, w, 5, stride=2, pad_mode="same", has_bias=True, weight_init="xavier_uniform",
                   bias_init="zeros", input_size=image_size, kernels=kernels, spectral_norm=sn),
            LeakyReLU(SLOPE, native=native), Dropout(DROPOUT, salt=1, native=native),
            Conv2d(w, 2 * w, 5, stride=2, pad_mode="same", has_bias=True, weight_init="xavier_uniform",
                   bias_init="zeros", input_size=image_size // 2, kernels=kernels, spectral_norm=sn),
            LeakyReLU(SLOPE, native=native), Dropout(DROPOUT, salt=2, native=native),
            Reshape((2 * w * side * side,)),
        )
        head = Dense(2 * w * side * side, 1, weight_init="xavier_uniform", bias_init="zeros", spectral_norm=sn)
        if self.projection:
            self.top = ProjectedOutput(head, spec.num_classes, 2 * w * side * side, probability=False)
        else:
            self.model.append(head)
        self.update_parameters_name("discriminator.")

    def construct(self, x, y=None):
        if self.projection:
            return self.top(self.model(x), y)
        if self.num_classes:
            x = label_maps(x, y, self.num_classes)
        return self.model(x)


def check(spec) -> None:
    if spec.image_size % 4 or spec.image_size < 4:
        raise ValueError(f"--image_size {spec.image_size}: the dcgan-mnist family needs a "
                         f"multiple of 4 (28 for MNIST)")
    if spec.ngf < 1 or spec.ndf < 1 or spec.channels < 1 or spec.latent_size < 1:
        raise ValueError(f"dcgan-mnist: latent size, channels, --ngf and --ndf must be positive ({spec})")


FAMILY = Family("dcgan-mnist", PRESET, "logit", Generator, Discriminator, check)
