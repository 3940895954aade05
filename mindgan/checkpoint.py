"""Checkpoints: atomic writes, the resume state, and loading generators written by anyone.

Every file is written to a temporary name in the same folder and renamed into place, so a
process killed at any moment leaves the previous checkpoint intact and loadable.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import mindspore as ms
from mindspore import nn

from .fileio import atomic_output
from .models import Generator

__all__ = ["CheckpointError", "atomic_save", "save_state", "load_state", "read_checkpoint",
           "generator_weights", "load_generator", "as_generator"]


class CheckpointError(ValueError):
    """A file is not a usable checkpoint for what was asked of it."""


def atomic_save(params, path: str | os.PathLike, append_dict: dict | None = None) -> Path:
    """Write `params` (a Cell or a list of {"name", "data"} dicts) to `path` atomically."""
    with atomic_output(path, fsync=True) as tmp:
        ms.save_checkpoint(params, str(tmp), append_dict=append_dict)
    return Path(path)


def _unique_params(cells: list[nn.Cell]) -> list[dict]:
    seen, out = set(), []
    for cell in cells:
        for p in cell.get_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append({"name": p.name, "data": p})
    return out


def save_state(path, cells: list[nn.Cell], step: int, fixed_noise, config: dict) -> Path:
    """The resume state: every parameter of `cells` (networks and optimizers: weights,
    BatchNorm statistics, Adam moments and step counters) plus the global step, the fixed
    sampling noise and the run's config. The data order and noise are pure functions of
    (seed, step), so no other RNG state is needed."""
    extra = {"mindgan_step": int(step), "mindgan_config": json.dumps(config),
             "mindgan_fixed_noise": ms.Tensor(fixed_noise)}
    return atomic_save(_unique_params(cells), path, append_dict=extra)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """`mindspore.load_checkpoint` with one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint ({first})") from None


def load_state(path, cells: list[nn.Cell]) -> dict:
    """Load a `save_state` file into `cells`; returns {"step", "config", "fixed_noise"}."""
    params = read_checkpoint(path)
    if "mindgan_step" not in params:
        raise CheckpointError(f"{path}: not a mindgan resume state (no step counter in it)")
    for cell in cells:
        missing, _ = ms.load_param_into_net(cell, params, strict_load=True)
        missing = [m for m in missing if m]
        if missing:
            raise CheckpointError(f"{path}: lacks {len(missing)} parameters, e.g. {missing[0]}")
    return {"step": int(params["mindgan_step"].asnumpy()),
            "config": json.loads(params["mindgan_config"]),
            "fixed_noise": params["mindgan_fixed_noise"].asnumpy()}


# Generator parameters by any name: mindgan's ("generator.model.3.gamma"), the tutorial's
# ("optim_ggeneratormodel.3.gamma", "generatormodel.3.moving_mean"), or a bare "model.3.gamma".
_G_PARAM = re.compile(r"(?:^|[^0-9])(\d+)\.(weight|bias|gamma|beta|moving_mean|moving_variance)$")
_NOT_G = re.compile(r"moment[12]|discriminator|optim_d|^mindgan_")


def _canonical(name: str) -> str:
    m = _G_PARAM.search(name)
    return f"model.{m.group(1)}.{m.group(2)}"


def generator_weights(params: dict, path="checkpoint") -> tuple[dict, int]:
    """Pick the generator's parameters out of any checkpoint dict and name them as
    `Generator` does. Returns (weights, latent_size); CheckpointError if there is no generator."""
    reference = Generator(1)  # only for names and shapes; latent size 1 is cheap to build
    expected = {_canonical(p.name): p.shape for p in reference.get_parameters()}
    found = {_canonical(name): value for name, value in params.items()
             if _G_PARAM.search(name) and not _NOT_G.search(name) and hasattr(value, "shape")}
    if "model.0.weight" not in found or found.keys() != expected.keys():
        # The discriminator's last layer, Dense 256 -> 1, is the telltale.
        if any(tuple(getattr(v, "shape", ())) == (1, 256) for v in params.values()):
            raise CheckpointError(f"{path}: this is a discriminator checkpoint, not a generator")
        missing = sorted(expected.keys() - found.keys())
        raise CheckpointError(f"{path}: no generator weights found (missing e.g. "
                              f"{missing[0] if missing else '?'}; {len(params)} entries in the file)")
    latent = int(found["model.0.weight"].shape[1])
    for key, shape in expected.items():
        want = (shape[0], latent) if key == "model.0.weight" else tuple(shape)
        if tuple(found[key].shape) != tuple(want):
            raise CheckpointError(f"{path}: {key} has shape {tuple(found[key].shape)}, "
                                  f"expected {tuple(want)}")
    return found, latent


def load_generator(path: str | os.PathLike, latent_size: int | None = None) -> Generator:
    """A `Generator` with the weights of `path`, in inference mode (BatchNorm uses its
    moving statistics). `path` may be a generator checkpoint, a resume state, or a file the
    tutorial's own code saved. If `latent_size` is given, a mismatch is a CheckpointError."""
    weights, latent = generator_weights(read_checkpoint(path), path)
    if latent_size is not None and latent != latent_size:
        raise CheckpointError(f"{path}: generator has latent size {latent}, "
                              f"not the {latent_size} asked for")
    net = Generator(latent)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(weights[_canonical(p.name)].asnumpy()))
    net.set_train(False)
    return net


def as_generator(ckpt) -> Generator:
    """`ckpt` itself if it is already a loaded Generator, else `load_generator(ckpt)`."""
    return ckpt if isinstance(ckpt, Generator) else load_generator(ckpt)
