"""Model families and the spec that names one network pair.

A `ModelSpec` (family, latent size, image shape, widths) is everything needed to rebuild a
generator and discriminator; checkpoints carry it, so no code downstream holds an image shape
or an architecture as a constant. `build(spec)` returns `(generator, discriminator)`.

Every family is a module here with the same small surface:

- `PRESET`: its reference hyper-parameters (the defaults of `--model NAME`);
- `D_OUTPUT`: "probability" (D ends in a Sigmoid, loss BCE) or "logit" (loss BCE on logits);
- `generator(spec, kernels)`, `discriminator(spec, kernels)`: the networks, their layers
  computing as `kernels` (`mindgan.cpu.Kernels`) say. G maps z float32 `[N, latent]` to
  images float32 `[N, C, H, W]` in [-1, 1]; D maps images to `[N, 1]`;
- `check(spec)`: ValueError with one line if the family cannot build that spec;
- `spec_from_shapes(shapes)`: the spec of a generator whose canonical parameter names
  ("model.<index>.<kind>") have these shapes, or None if it is not this family's.

Adding a family is adding such a module and one line to `FAMILIES`.
"""
from __future__ import annotations

from ..cpu import DEFAULT, Kernels
from . import dcgan, dcgan_mnist, mlp
from .layers import BatchNorm1d, LeakyReLU
from .mlp import IMG_SHAPE, Discriminator, Generator
from .spec import ModelSpec

__all__ = ["ModelSpec", "FAMILIES", "family", "build", "build_generator", "spec_from_shapes",
           "count_params",
           "Generator", "Discriminator", "BatchNorm1d", "LeakyReLU", "IMG_SHAPE"]

FAMILIES = {"mlp": mlp, "dcgan": dcgan, "dcgan-mnist": dcgan_mnist}


def family(name: str):
    """The module of family `name`; ValueError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r} (choose from {', '.join(FAMILIES)})")
    return FAMILIES[name]


def build(spec: ModelSpec, kernels: Kernels = DEFAULT):
    """`(generator, discriminator)` for `spec`, freshly initialised (seed with
    `mindspore.set_seed` first for reproducible weights), in training mode, with parameter
    names prefixed "generator." / "discriminator." so both fit in one compiled graph."""
    fam = family(spec.family)
    fam.check(spec)
    net_g, net_d = fam.generator(spec, kernels), fam.discriminator(spec, kernels)
    net_g.spec = net_d.spec = spec
    return net_g, net_d


def build_generator(spec: ModelSpec, kernels: Kernels = DEFAULT):
    """The generator of `spec` alone (inference, export, loading checkpoints)."""
    fam = family(spec.family)
    fam.check(spec)
    net_g = fam.generator(spec, kernels)
    net_g.spec = spec
    return net_g


def spec_from_shapes(shapes: dict) -> ModelSpec | None:
    """The spec of a generator given its canonical parameter shapes, from whichever family
    recognises them; None if none does."""
    for fam in FAMILIES.values():
        spec = fam.spec_from_shapes(shapes)
        if spec is not None:
            return spec
    return None


def count_params(net) -> int:
    """Number of trainable scalars in `net`."""
    return sum(int(p.size) for p in net.trainable_params())
