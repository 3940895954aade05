"""Model families: each is a `Family` in `FAMILIES`, building a generator and discriminator
from a `ModelSpec` (family, latent size, image shape, widths), which the networks keep as their
`.spec` and checkpoints carry, so no code downstream holds an image shape or architecture as a
constant.

The contract of a family (see `Family`):
- `preset`: its reference hyper-parameters (the defaults of `--model NAME`);
- `d_output`: "probability" (D ends in a Sigmoid) or "logit" (`mindgan.losses` fits the loss);
- `generator(spec, kernels)`, `discriminator(spec, kernels)`: G maps z float32 `[N, latent]`
  to images float32 `[N, C, H, W]` in [-1, 1]; D maps images to `[N, 1]`; `kernels`
  (`mindgan.cpu.Kernels`) says how their layers compute;
- `check(spec)`: ValueError with one line if the family cannot build that spec.

Adding a family is a module here that defines one `Family` as `FAMILY`, and a line in
`mindgan.registry`. Recognising
checkpoints without a spec (the tutorials' own files) is `mindgan.compat`'s.
"""
from __future__ import annotations

import importlib

from ..cpu import DEFAULT, Kernels
from ..registry import FAMILY_MODULES
from .family import Family
from .layers import BatchNorm1d, LeakyReLU
from .mlp import Discriminator, Generator
from .spec import ModelSpec

__all__ = ["ModelSpec", "Family", "FAMILIES", "family", "build", "build_generator", "count_params",
           "Generator", "Discriminator", "BatchNorm1d", "LeakyReLU"]


FAMILIES = {name: importlib.import_module(f".{module}", __name__).FAMILY for name, module in FAMILY_MODULES.items()}


def family(name: str) -> Family:
    """The family `name`; ValueError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r} (choose from {', '.join(FAMILIES)})")
    return FAMILIES[name]


def build(spec: ModelSpec, kernels: Kernels = DEFAULT):
    """`(generator, discriminator)` for `spec`, freshly initialised (seed with
    `mindspore.set_seed` first for reproducible weights), in training mode, with parameter
    names prefixed "generator." / "discriminator." so both fit in one compiled graph."""
    return family(spec.family).build(spec, kernels)


def build_generator(spec: ModelSpec, kernels: Kernels = DEFAULT):
    """The generator of `spec` alone (inference, export, loading checkpoints)."""
    return family(spec.family).build(spec, kernels, discriminator=False)


def count_params(net) -> int:
    """Number of trainable scalars in `net`."""
    return sum(int(p.size) for p in net.trainable_params())
