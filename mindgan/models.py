"""The tutorial's networks: an MLP generator and discriminator for 28x28 digits."""
from __future__ import annotations

from mindspore import nn, ops

IMG_SIZE = 28
IMG_SHAPE = (1, IMG_SIZE, IMG_SIZE)

__all__ = ["Generator", "Discriminator", "BatchNorm1d", "LeakyReLU", "IMG_SHAPE", "count_params"]


class BatchNorm1d(nn.BatchNorm1d):
    """`nn.BatchNorm1d` with the same parameters and results (to float rounding), whose
    training-mode forward is written in sums and elementwise ops. x float32 `[N, C]`.

    MindSpore 2.10's fused BatchNorm kernel on CPU costs about 2 µs per channel (2 ms for
    `[128, 1024]`, a quarter of the training step); these ops compile to the same math in a
    fraction of that, on any device. Inference mode is the parent's fused kernel, so exported
    graphs keep a plain BatchNorm node. Like the parent: normalises with the biased batch
    variance and updates the running variance with the unbiased one.
    """

    def construct(self, x):
        if not self.training:
            return super().construct(x)
        n = x.shape[0]
        # sum * (1/n), not mean: ReduceMean over the batch axis is several times slower on CPU.
        mean = x.sum(0) * (1.0 / n)
        centred = x - mean
        var = (centred * centred).sum(0) * (1.0 / n)
        m = self.momentum  # MindSpore stores 1 - momentum: the weight of the new batch
        ops.assign(self.moving_mean, self.moving_mean * (1.0 - m) + ops.stop_gradient(mean) * m)
        ops.assign(self.moving_variance, self.moving_variance * (1.0 - m)
                   + ops.stop_gradient(var) * (m * n / (n - 1)))
        return centred * (ops.rsqrt(var + self.eps) * self.gamma) + self.beta


class LeakyReLU(nn.LeakyReLU):
    """`nn.LeakyReLU` as relu(x) - alpha * relu(-x): the same values and gradients bit for bit
    (except the subgradient at exactly 0), but the gradient is two ReLU masks instead of the
    Maximum gradient's Select/compare chain, which costs 2-3x more on CPU."""

    def construct(self, x):
        return ops.relu(x) - self.alpha * ops.relu(-x)


class Generator(nn.Cell):
    """z float32 `[N, latent_size]` ~ N(0, 1) -> images float32 `[N, 1, 28, 28]` in [-1, 1].

    Dense 100→128, ReLU; three blocks Dense → BatchNorm1d → ReLU (256, 512, 1024);
    Dense 1024→784, Tanh. 1,510,032 trainable parameters at latent_size 100.
    """

    def __init__(self, latent_size: int = 100):
        super().__init__()
        self.latent_size = latent_size
        self.model = nn.SequentialCell()
        self.model.append(nn.Dense(latent_size, 128))
        self.model.append(nn.ReLU())
        for width_in, width_out in ((128, 256), (256, 512), (512, 1024)):
            self.model.append(nn.Dense(width_in, width_out))
            self.model.append(BatchNorm1d(width_out))
            self.model.append(nn.ReLU())
        self.model.append(nn.Dense(1024, IMG_SIZE * IMG_SIZE))
        self.model.append(nn.Tanh())
        # Unique names across both nets: one compiled graph holds both (see the tutorial).
        self.update_parameters_name("generator.")

    def construct(self, z):
        return ops.reshape(self.model(z), (-1,) + IMG_SHAPE)


class Discriminator(nn.Cell):
    """images `[N, 1, 28, 28]` or `[N, 784]` in [-1, 1] -> P(real) float32 `[N, 1]` in (0, 1).

    Dense 784→512, LeakyReLU(0.2); Dense 512→256, LeakyReLU(0.2); Dense 256→1, Sigmoid.
    533,505 trainable parameters.
    """

    def __init__(self):
        super().__init__()
        self.model = nn.SequentialCell(
            nn.Dense(IMG_SIZE * IMG_SIZE, 512), LeakyReLU(0.2),
            nn.Dense(512, 256), LeakyReLU(0.2),
            nn.Dense(256, 1), nn.Sigmoid(),
        )
        self.update_parameters_name("discriminator.")

    def construct(self, x):
        return self.model(ops.reshape(x, (-1, IMG_SIZE * IMG_SIZE)))


def count_params(net: nn.Cell) -> int:
    """Number of trainable scalars in `net`."""
    return sum(int(p.size) for p in net.trainable_params())
