"""`dcgan`: MindSpore's DCGAN tutorial ("DCGAN生成漫画头像", anime faces at 64x64).

G: ConvTranspose(nz→8·ngf, 4, stride 1, valid) → BN → ReLU, then stride-2 blocks
ConvTranspose(4, 2, pad 1) → BN → ReLU halving the width, and ConvTranspose(ngf→nc, 4, 2, pad 1)
→ Tanh. D mirrors it: Conv(nc→ndf, 4, 2, pad 1) → LeakyReLU(0.2), stride-2 Conv → BN →
LeakyReLU(0.2) blocks doubling the width, Conv(→1, 4, 1, valid) → Sigmoid. No conv biases.
Sizes other than 64 add or remove one stride-2 block per factor of two (16·2^k), as the
common DCGAN references do. The layer indices match the tutorial's SequentialCell, so
checkpoints its code saved ("generator.0.weight", ...) load as they are.
"""
from __future__ import annotations

from mindspore import nn, ops
from mindspore.common.initializer import Normal

from ..cpu import DEFAULT
from .family import Family
from .layers import (
    BatchNorm2d,
    Conv2d,
    Conv2dTranspose,
    LeakyReLU,
    ProjectedOutput,
    ReLU,
    WholeInputConv2d,
    WholeInputConv2dTranspose,
    label_maps,
    one_hot,
)

# The tutorial's hyper-parameters: 64x64 RGB, batch 128, 10 epochs, Adam(2e-4, 0.5), 8x8 samples.
PRESET = dict(epochs=10, batch_size=128, lr=2e-4, beta1=0.5, beta2=0.999,
              image_size=64, channels=3, num_samples=64)

__all__ = ["Generator", "Discriminator", "FAMILY", "stride2_blocks"]


def stride2_blocks(image_size: int) -> int:
    """How many stride-2 layers take 4x4 to `image_size` (4 for 64); ValueError with one line
    unless `image_size` is 16·2^k."""
    k, size = 2, 16
    while size < image_size:
        k, size = k + 1, size * 2
    if size != image_size:
        raise ValueError(f"--image_size {image_size}: the dcgan family needs 16·2^k pixels "
                         f"(16, 32, 64, 128, ...); --model dcgan-carpedm20 (carpedm20's DCGAN-tensorflow, "
                         f"5x5 kernels) takes any size from 16, --model dcgan-mnist any multiple of 4, "
                         f"--model mlp any size")
    return k


def _bn(width: int, native: bool) -> nn.BatchNorm2d:
    # Not BatchNorm1d's sums-and-elementwise form: on 4-D tensors MindSpore's fused kernel beats
    # it on CPU, and the native kernel beats both (docs/PERFORMANCE.md).
    return BatchNorm2d(width, gamma_init=Normal(0.02, 1.0), beta_init="zeros", native=native)


class Generator(nn.Cell):
    """z float32 `[N, latent]` -> images float32 `[N, nc, S, S]` in [-1, 1].
    3,576,704 trainable parameters at latent 100, ngf 64, nc 3, S 64. Conditional
    (`spec.num_classes` K > 0): `G(z, y)`, the one-hot label joined to z."""

    def __init__(self, spec, kernels=DEFAULT):
        super().__init__()
        self.spec, self.latent_size = spec, spec.latent_size
        latent_size, channels, image_size, ngf = spec.latent_size, spec.channels, spec.image_size, spec.ngf
        native, self.num_classes = kernels.native, spec.num_classes
        self.inputs = latent_size + spec.num_classes
        blocks = stride2_blocks(image_size)
        width = ngf * 2 ** (blocks - 1)
        self.model = nn.SequentialCell()
        self.model.append(WholeInputConv2dTranspose(self.inputs, width, 4, stride=1, pad_mode="valid",
                                                    has_bias=False, weight_init=Normal(0.02), kernels=kernels))
        size = 4
        self.model.append(_bn(width, kernels.native))
        self.model.append(ReLU(native=native))
        for _ in range(blocks - 1):
            self.model.append(Conv2dTranspose(width, width // 2, 4, stride=2, pad_mode="pad", padding=1,
                                              has_bias=False, weight_init=Normal(0.02), input_size=size,
                                              kernels=kernels))
            self.model.append(_bn(width // 2, kernels.native))
            self.model.append(ReLU(native=native))
            width, size = width // 2, size * 2
        self.model.append(Conv2dTranspose(width, channels, 4, stride=2, pad_mode="pad", padding=1,
                                          has_bias=False, weight_init=Normal(0.02), input_size=size, kernels=kernels))
        self.model.append(nn.Tanh())
        self.update_parameters_name("generator.")

    def construct(self, z, y=None):
        if self.num_classes:
            z = ops.concat((z, one_hot(y, self.num_classes)), 1)
        return self.model(ops.reshape(z, (-1, self.inputs, 1, 1)))


class Discriminator(nn.Cell):
    """images `[N, nc, S, S]` in [-1, 1] -> P(real) float32 `[N, 1]` in (0, 1).
    2,765,568 trainable parameters at ndf 64, nc 3, S 64. Conditional: `D(x, y)`, the one-hot
    label joined to the image as K constant channels (`layers.label_maps`)."""

    def __init__(self, spec, kernels=DEFAULT):
        super().__init__()
        self.spec = spec
        channels, image_size, ndf, native = spec.channels, spec.image_size, spec.ndf, kernels.native
        self.num_classes = spec.num_classes
        self.projection, joined = spec.projected, spec.joined_labels
        blocks = stride2_blocks(image_size)
        width, size = ndf, image_size
        self.model = nn.SequentialCell()
        sn = spec.spectral_norm
        self.model.append(Conv2d(channels + joined, width, 4, stride=2, pad_mode="pad", padding=1,
                                 has_bias=False, weight_init=Normal(0.02), input_size=size, kernels=kernels,
                                 spectral_norm=sn))
        self.model.append(LeakyReLU(0.2, native=native))
        for _ in range(blocks - 1):
            size //= 2
            self.model.append(Conv2d(width, width * 2, 4, stride=2, pad_mode="pad", padding=1,
                                     has_bias=False, weight_init=Normal(0.02), input_size=size, kernels=kernels,
                                     spectral_norm=sn))
            self.model.append(_bn(width * 2, kernels.native_batch_norm))
            self.model.append(LeakyReLU(0.2, native=native))
            width *= 2
        head = WholeInputConv2d(width, 1, 4, stride=1, pad_mode="valid", has_bias=False,
                                weight_init=Normal(0.02), kernels=kernels, spectral_norm=sn)
        probability = spec.d_output != "logit"  # the tutorial's; a loss on D's raw score goes without
        if self.projection:
            self.top = ProjectedOutput(head, spec.num_classes, width * 16, probability)
        else:
            self.model.append(head)
            if probability:
                self.model.append(nn.Sigmoid())
        self.update_parameters_name("discriminator.")

    def construct(self, x, y=None):
        if self.projection:
            return self.top(self.model(x), y)
        if self.num_classes:
            x = label_maps(x, y, self.num_classes)
        return ops.reshape(self.model(x), (-1, 1))


def check(spec) -> None:
    stride2_blocks(spec.image_size)
    if spec.ngf < 1 or spec.ndf < 1 or spec.channels < 1 or spec.latent_size < 1:
        raise ValueError(f"dcgan: latent size, channels, --ngf and --ndf must be positive ({spec})")


FAMILY = Family("dcgan", PRESET, "probability", Generator, Discriminator, check)
