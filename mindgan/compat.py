"""Checkpoints without a model spec: the tutorials' own files (the MLP lesson's
`Generator199.ckpt`, MindSpore's DCGAN lesson's `Generator.ckpt`) and mindgan files from before
specs. Each is recognised by its parameter shapes, under canonical names "model.<index>.<kind>"
(`checkpoint.generator_weights` makes them), and every width is read from those shapes.

A generator file says nothing about its discriminator: where the file holds D's weights too,
`ndf` is read from them; otherwise the spec keeps the family's default width (64), which only
matters to code that would build a discriminator for it.
"""
from __future__ import annotations

import dataclasses
import math

from .models.mlp import HIDDEN
from .models.spec import ModelSpec

__all__ = ["spec_from_shapes", "looks_like_discriminator"]


def _mlp(shapes: dict) -> ModelSpec | None:
    """Dense layers at indices 0, 2, 5, 8, 11 (the tutorial's SequentialCell), the output
    layer sized to a square image of 1 or 3 channels."""
    first, last = shapes.get("model.0.weight"), shapes.get("model.11.weight")
    if first is None or last is None or len(first) != 2 or tuple(first[:1]) != (HIDDEN[0],):
        return None
    if len(last) != 2 or last[1] != HIDDEN[-1]:
        return None
    for channels in (1, 3):
        side = math.isqrt(last[0] // channels)
        if channels * side * side == last[0]:
            return ModelSpec("mlp", latent_size=int(first[1]), channels=channels, image_size=side)
    return None


def _dcgan(shapes: dict) -> ModelSpec | None:
    """4-D ConvTranspose weights at indices 0, 3, 6, ... with 4x4 kernels, BN after each but
    the last."""
    first = shapes.get("model.0.weight")
    if first is None or len(first) != 4 or tuple(first[2:]) != (4, 4):
        return None
    convs = []
    while f"model.{3 * len(convs)}.weight" in shapes:
        convs.append(tuple(shapes[f"model.{3 * len(convs)}.weight"]))
    if len(convs) < 3 or any(len(c) != 4 or c[2:] != (4, 4) for c in convs):
        return None
    last = convs[-1]  # [ngf, nc, 4, 4]
    return ModelSpec("dcgan", latent_size=int(first[0]), channels=int(last[1]),
                     image_size=4 * 2 ** (len(convs) - 1), ngf=int(last[0]))


def _dcgan_mnist(shapes: dict) -> ModelSpec | None:
    """Dense at index 0, 5x5 ConvTranspose at 4, 7 and 10."""
    dense, last = shapes.get("model.0.weight"), shapes.get("model.10.weight")
    conv = shapes.get("model.4.weight")
    if dense is None or last is None or conv is None or len(dense) != 2 or len(last) != 4:
        return None
    if tuple(last[2:]) != (5, 5) or len(conv) != 4:
        return None
    ngf = int(last[0])
    side = math.isqrt(dense[0] // (4 * ngf))
    if side * side * 4 * ngf != dense[0]:
        return None
    return ModelSpec("dcgan-mnist", latent_size=int(dense[1]), channels=int(last[1]),
                     image_size=4 * side, ngf=ngf)


RECOGNISERS = (_mlp, _dcgan, _dcgan_mnist)


def spec_from_shapes(shapes: dict, discriminator_shapes: dict | None = None) -> ModelSpec | None:
    """The spec of a generator given its canonical parameter shapes, from whichever family
    recognises them; None if none does. `discriminator_shapes` (canonical names of D's
    parameters in the same file, if any) give the convolutional families' `ndf`: the output
    channels of D's first convolution."""
    for recognise in RECOGNISERS:
        spec = recognise(shapes)
        if spec is not None:
            first = (discriminator_shapes or {}).get("model.0.weight")
            if spec.family != "mlp" and first is not None and len(first) == 4:
                spec = dataclasses.replace(spec, ndf=int(first[0]))
            return spec
    return None


def looks_like_discriminator(names: list[str], shapes: dict) -> bool:
    """Whether a file with these parameter names (and canonical shapes) holds a discriminator
    and no generator: D's names, or a last layer with one output (`[1, features]` Dense or
    `[1, C, k, k]` convolution) and nothing a generator recognisably has."""
    if any("discriminator" in n for n in names) and not any("generator" in n for n in names):
        return True
    outputs = [s for s in shapes.values() if len(s) in (2, 4) and s[0] == 1]
    return bool(outputs) and spec_from_shapes(shapes) is None
