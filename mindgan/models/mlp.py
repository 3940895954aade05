"""`mlp`: the tutorial's networks ("GAN图像生成"), an MLP generator and discriminator.

The tutorial draws 28x28 MNIST digits; the image shape here comes from the spec (the last and
first Dense layers are sized to C*H*W), so the same networks work on any small image.
"""
from __future__ import annotations

import math

from mindspore import nn, ops

from ..cpu import DEFAULT
from .family import Family
from .layers import BatchNorm1d, Dense, LeakyReLU, ProjectedOutput, one_hot
from .spec import ModelSpec

TUTORIAL = ModelSpec()  # the tutorial's 28x28 digits, latent 100
# The tutorial's hyper-parameters.
PRESET = dict(epochs=200, batch_size=128, lr=2e-4, beta1=0.5, beta2=0.999,
              image_size=28, channels=1, num_samples=25)

__all__ = ["Generator", "Discriminator", "FAMILY", "HIDDEN"]

HIDDEN = (128, 256, 512, 1024)


class Generator(nn.Cell):
    """z float32 `[N, latent_size]` ~ N(0, 1) -> images float32 `[N, *image_shape]` in [-1, 1].

    Dense 100→128, ReLU; three blocks Dense → BatchNorm1d → ReLU (256, 512, 1024);
    Dense 1024→C*H*W, Tanh. 1,510,032 trainable parameters at latent 100 and `[1, 28, 28]`.
    Conditional (`spec.num_classes` K > 0): `G(z, y)`, labels int32 `[N]`, one-hot y joined to
    z (the cGAN form: the first layer takes latent + K).
    """

    def __init__(self, spec: ModelSpec = TUTORIAL, kernels=DEFAULT):
        super().__init__()
        self.spec, self.latent_size, self.image_shape = spec, spec.latent_size, spec.image_shape
        self.num_classes = spec.num_classes
        self.model = nn.SequentialCell()
        self.model.append(nn.Dense(spec.latent_size + spec.num_classes, HIDDEN[0]))
        self.model.append(nn.ReLU())
        for width_in, width_out in zip(HIDDEN, HIDDEN[1:]):
            self.model.append(nn.Dense(width_in, width_out))
            self.model.append(BatchNorm1d(width_out))
            self.model.append(nn.ReLU())
        self.model.append(nn.Dense(HIDDEN[-1], math.prod(self.image_shape)))
        self.model.append(nn.Tanh())
        # Unique names across both nets: one compiled graph holds both (see the tutorial).
        self.update_parameters_name("generator.")

    def construct(self, z, y=None):
        if self.num_classes:
            z = ops.concat((z, one_hot(y, self.num_classes)), 1)
        return ops.reshape(self.model(z), (-1,) + self.image_shape)


class Discriminator(nn.Cell):
    """images `[N, *image_shape]` (or flattened) in [-1, 1] -> P(real) float32 `[N, 1]` in (0, 1).

    Dense C*H*W→512, LeakyReLU(0.2); Dense 512→256, LeakyReLU(0.2); Dense 256→1, Sigmoid (none
    when `spec.d_output` is "logit": losses on the raw score).
    533,505 trainable parameters at `[1, 28, 28]`. Conditional: `D(x, y)`, one-hot y joined
    to the flattened image (the first layer takes C*H*W + K); with `spec.condition`
    "projection", the last Dense's logit plus `LabelProjection` of its 256 inputs instead.
    """

    def __init__(self, spec: ModelSpec = TUTORIAL, kernels=DEFAULT):
        super().__init__()
        self.spec, self.features = spec, math.prod(spec.image_shape)
        self.num_classes = spec.num_classes
        self.projection, joined = spec.projected, spec.joined_labels
        sn = spec.spectral_norm
        self.model = nn.SequentialCell(
            Dense(self.features + joined, 512, spectral_norm=sn), LeakyReLU(0.2),
            Dense(512, 256, spectral_norm=sn), LeakyReLU(0.2),
        )
        probability = spec.d_output != "logit"  # the tutorial's; a loss on D's raw score goes without
        if self.projection:
            self.top = ProjectedOutput(Dense(256, 1, spectral_norm=sn), spec.num_classes, 256, probability)
        else:
            self.model.append(Dense(256, 1, spectral_norm=sn))
            if probability:
                self.model.append(nn.Sigmoid())
        self.update_parameters_name("discriminator.")

    def construct(self, x, y=None):
        x = ops.reshape(x, (-1, self.features))
        if self.projection:
            return self.top(self.model(x), y)
        if self.num_classes:
            x = ops.concat((x, one_hot(y, self.num_classes)), 1)
        return self.model(x)


def check(spec) -> None:
    if spec.latent_size < 1 or spec.channels < 1 or spec.image_size < 1:
        raise ValueError(f"mlp: latent size, channels and image size must be positive ({spec})")


FAMILY = Family("mlp", PRESET, "probability", Generator, Discriminator, check)
