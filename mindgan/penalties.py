"""Gradient penalties on the discriminator's input, added to D's loss inside the compiled step:

- "gp" (Gulrajani et al. 2017, WGAN-GP): weight * mean((||grad_x D(x_hat)||_2 - 1)^2) at
  x_hat = e * real + (1 - e) * fake, e ~ U[0, 1) per image; the `wgan-gp` loss brings it
  with weight 10 (the paper's lambda).
- "r1" (Mescheder et al. 2018): gamma / 2 * mean(||grad_x D(x)||^2) on the real images,
  `--r1 GAMMA`; with `--r1_every k`, lazily (StyleGAN2): on every k-th step, with gamma * k.

Both differentiate D's input gradient once more (double backward), so D must be built with
`Kernels(second_order=True)` (`needs_second_order`). The gradient is taken of D's raw score,
so a run with a penalty trains a D without its Sigmoid (the BCE loss on its logits, the same
loss). Where DiffAugment is on, the penalties see what D sees: the augmented images.

The interpolation weights e are a pure function of a call counter (`Interpolation.calls`, a
Parameter in the resume state) and the image's index, hashed as DiffAugment and Dropout hash,
so a resumed run draws exactly what it would have.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from .models.layers import counted_uniform

__all__ = ["GP_WEIGHT", "Penalty", "NONE", "penalty_for", "r1_steps", "needs_second_order", "input_gradient",
           "r1_penalty", "gp_penalty", "Interpolation"]

# The losses that come with a gradient penalty, and its weight (WGAN-GP's lambda).
GP_WEIGHT = {"wgan-gp": 10.0}


class Penalty(NamedTuple):
    """What D's loss adds: `r1` (gamma; 0: none), `gp` (WGAN-GP's weight; 0: none) with
    `interpolate` (an `Interpolation`) drawing its points."""
    r1: float = 0.0
    gp: float = 0.0
    interpolate: Any = None


NONE = Penalty()


def penalty_for(spec, interpolate=None, r1_every: int = 1) -> Penalty:
    """The penalty that training `spec` (its loss, its r1) adds; `interpolate` is needed (and
    used) only with the wgan-gp loss. With lazy R1 (`r1_every` k > 1, applied on every k-th
    step only: `r1_steps`), its gamma is k times larger, as in StyleGAN2, so that the penalty
    weighs the same on average."""
    gp = GP_WEIGHT.get(spec.loss, 0.0)
    if gp and interpolate is None:
        raise ValueError(f"the {spec.loss} loss needs an Interpolation for its gradient penalty")
    return Penalty(float(spec.r1) * r1_every, gp, interpolate if gp else None)


def r1_steps(first_step: int, steps: int, r1_every: int) -> tuple[bool, ...] | None:
    """Which of the steps first_step+1 ... first_step+steps carry lazy R1: the 1st, (k+1)-th,
    (2k+1)-th ... of the run; None when every step does (k = 1)."""
    if r1_every <= 1:
        return None
    return tuple((first_step + j) % r1_every == 0 for j in range(steps))


def needs_second_order(spec) -> bool:
    """Whether training `spec` differentiates D's input gradient (a gradient penalty)."""
    return spec.loss in GP_WEIGHT or spec.r1 > 0


def input_gradient(net_d):
    """`f(x, y) -> (D(x, y) [N, 1], dD/dx [N, C, H, W])` from one forward pass of `net_d`,
    both differentiable again: the vector-Jacobian product with ones, so row n is D(x_n)'s
    gradient alone (D treats images independently up to its batch norms). y: labels or None.

    `ms.vjp`, not `value_and_grad(has_aux=True)`, whose extra outputs carry no gradient."""
    def unconditional(x):
        return net_d(x, None)

    def scores_and_gradient(x, y):
        if y is None:
            scores, backward = ms.vjp(unconditional, x)
            return scores, backward(ops.ones_like(scores))[0]
        scores, backward = ms.vjp(net_d, x, y)
        return scores, backward(ops.ones_like(scores))[0]
    return scores_and_gradient


def _squared_norms(g):
    """||g_n||^2 for each image: `[N]`."""
    return ops.square(g).reshape(g.shape[0], -1).sum(1)


def r1_penalty(g, gamma: float):
    """gamma / 2 * mean ||g_n||^2, g = dD/dx at the real images."""
    return (0.5 * gamma) * _squared_norms(g).mean()


def gp_penalty(g, weight: float):
    """weight * mean (||g_n|| - 1)^2, g = dD/dx at the interpolates. The 1e-12 keeps the
    norm's gradient finite where g is zero."""
    return weight * ops.square(ops.sqrt(_squared_norms(g) + 1e-12) - 1.0).mean()


class Interpolation(nn.Cell):
    """(real, fake) float32 `[N, C, H, W]` -> e * real + (1 - e) * fake, with e ~ U[0, 1) per
    image drawn afresh on each call (a counted hash: resume is exact). No gradient flows
    through e."""

    def __init__(self, salt: int = 0):
        super().__init__()
        self.salt = int(salt) % (1 << 31)
        self.calls = Parameter(Tensor(0.0, ms.float32), name="penalty.calls", requires_grad=False)
        self.rank = 0
        self.rshift = ops.RightShift()

    def use_workers(self, rank: int, workers: int) -> None:
        """Index images by their place in the global batch of `workers` equal slices."""
        self.rank = rank

    def construct(self, real, fake):
        n = real.shape[0]
        calls = self.calls * 1.0
        ops.assign(self.calls, calls + 1.0)
        e = counted_uniform(calls, self.salt, 0xC2B2AE3D, self.rank * n, n, self.rshift).reshape(n, 1, 1, 1)
        return e * real + (1.0 - e) * fake
