"""`Family`: the small interface every model family implements (see `mindgan.models`)."""
from __future__ import annotations

import dataclasses
from typing import Callable

from ..cpu import DEFAULT, Kernels
from .spec import ModelSpec

__all__ = ["Family"]


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family: its name, tutorial preset, D's output and network constructors."""
    name: str
    preset: dict
    d_output: str
    generator: Callable    # (spec, kernels) -> nn.Cell
    discriminator: Callable  # (spec, kernels) -> nn.Cell
    check: Callable        # spec -> None, or ValueError with one line

    def build(self, spec: ModelSpec, kernels: Kernels = DEFAULT, discriminator: bool = True):
        """`(generator, discriminator)` (or the generator alone) for `spec`."""
        self.check(spec)
        if not discriminator:
            return self.generator(spec, kernels)
        return self.generator(spec, kernels), self.discriminator(spec, kernels)
