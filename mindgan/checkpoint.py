"""Checkpoints: atomic writes, the resume state, and loading generators written by anyone.

Every file is written to a temporary name in the same folder and renamed into place, so a
process killed at any moment leaves the previous checkpoint intact and loadable. Generator
files and resume states carry their model spec ("mindgan_spec"), so a generator loads without
being told its architecture; files without one (older mindgan files, the tutorials' own
`Generator*.ckpt`) are recognised by their parameter names and shapes (`mindgan.compat`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import mindspore as ms
from mindspore import nn

from .compat import looks_like_discriminator, spec_from_shapes
from .fileio import atomic_output
from .models import ModelSpec, build_generator

__all__ = ["CheckpointError", "atomic_save", "save_generator", "save_state", "load_state",
           "read_checkpoint", "generator_weights", "load_generator", "as_generator"]


class CheckpointError(ValueError):
    """A file is not a usable checkpoint for what was asked of it."""


def atomic_save(params, path: str | os.PathLike, append_dict: dict | None = None) -> Path:
    """Write `params` (a Cell or a list of {"name", "data"} dicts) to `path` atomically.

    MindSpore writes checkpoints read-only (mode 0400); they get the usual 0644 here, so that a
    user can overwrite, move or delete them like any other file.
    """
    with atomic_output(path, fsync=True) as tmp:
        ms.save_checkpoint(params, str(tmp), append_dict=append_dict)
        os.chmod(tmp, 0o644)
    return Path(path)


def save_generator(net_g, path: str | os.PathLike) -> Path:
    """A generator checkpoint that carries its model spec (`net_g.spec`)."""
    spec = getattr(net_g, "spec", None)
    return atomic_save(net_g, path, append_dict={"mindgan_spec": spec.to_json()} if spec else None)


def _unique_params(cells: list[nn.Cell]) -> list[dict]:
    seen, out = set(), []
    for cell in cells:
        for p in cell.get_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append({"name": p.name, "data": p})
    return out


def save_state(path, cells: list[nn.Cell], step: int, fixed_noise, config: dict,
               spec: ModelSpec | None = None) -> Path:
    """The resume state: every parameter of `cells` (networks and optimizers: weights,
    BatchNorm statistics, dropout counters, Adam moments and step counters) plus the global
    step, the fixed sampling noise, the run's config and model spec. The data order and noise
    are pure functions of (seed, step), so no other RNG state is needed."""
    extra = {"mindgan_step": int(step), "mindgan_config": json.dumps(config),
             "mindgan_fixed_noise": ms.Tensor(fixed_noise)}
    if spec is not None:
        extra["mindgan_spec"] = spec.to_json()
    return atomic_save(_unique_params(cells), path, append_dict=extra)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """`mindspore.load_checkpoint` with one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    exported = {".onnx": "ONNX (run it with onnxruntime)",
                ".mindir": "MINDIR (run it with mindspore.load and nn.GraphCell, or MindSpore Lite)"}
    if path.suffix.lower() in exported:
        raise CheckpointError(f"{path}: an exported model in {exported[path.suffix.lower()]}, not a MindSpore "
                              f"checkpoint; the commands take the .ckpt it was exported from (README, "
                              f"\"Export for deployment\")")
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


# Generator parameters by any name: mindgan's ("generator.model.3.gamma"), the MLP tutorial's
# ("optim_ggeneratormodel.3.gamma", "generatormodel.3.moving_mean"), the DCGAN tutorial's
# ("generator.3.weight"), or a bare "model.3.gamma": all are "model.3.gamma" here.
_G_PARAM = re.compile(r"(?:^|[^0-9])(\d+)\.(weight|bias|gamma|beta|moving_mean|moving_variance)$")
_NOT_G = re.compile(r"moment[12]|discriminator|optim_d|^mindgan_")


def _canonical(name: str) -> str:
    m = _G_PARAM.search(name)
    return f"model.{m.group(1)}.{m.group(2)}"


def generator_weights(params: dict, path="checkpoint") -> tuple[dict, ModelSpec]:
    """Pick the generator's parameters out of any checkpoint dict, named as this package's
    generators name them ("model.<index>.<kind>"), and its model spec: the one the file
    carries, else the one its shapes say. CheckpointError (one line) if there is no generator
    or its weights do not fit the spec."""
    found = {_canonical(name): value for name, value in params.items()
             if _G_PARAM.search(name) and not _NOT_G.search(name) and hasattr(value, "shape")}
    shapes = {k: tuple(v.shape) for k, v in found.items()}
    d_shapes = {_canonical(name): tuple(value.shape) for name, value in params.items()
                if _G_PARAM.search(name) and "discriminator" in name and "moment" not in name
                and hasattr(value, "shape")}
    if "mindgan_spec" in params:
        try:
            spec = ModelSpec.from_json(str(params["mindgan_spec"]))
        except ValueError as exc:
            raise CheckpointError(f"{path}: mindgan_spec is {exc}") from None
    else:
        spec = spec_from_shapes(shapes, d_shapes)
    if spec is None:
        every = {_canonical(n): tuple(v.shape) for n, v in params.items()
                 if _G_PARAM.search(n) and hasattr(v, "shape")}
        if looks_like_discriminator(list(params), every):
            raise CheckpointError(f"{path}: this is a discriminator checkpoint, not a generator")
        raise CheckpointError(f"{path}: no generator weights of a known model family found "
                              f"({len(params)} entries in the file)")
    try:
        reference = build_generator(spec)
    except ValueError as exc:
        raise CheckpointError(f"{path}: its model spec cannot be built ({exc})") from None
    expected = {_canonical(p.name): tuple(p.shape) for p in reference.get_parameters()}
    missing = sorted(expected.keys() - shapes.keys())
    if missing:
        raise CheckpointError(f"{path}: lacks {len(missing)} weights of a {spec.describe()} "
                              f"generator, e.g. {missing[0]}")
    for key, shape in expected.items():
        if shapes[key] != shape:
            raise CheckpointError(f"{path}: {key} has shape {shapes[key]}, but a "
                                  f"{spec.describe()} generator needs {shape}")
    return {k: found[k] for k in expected}, spec


def load_generator(path: str | os.PathLike, latent_size: int | None = None, kernels=None):
    """The generator of `path`, in inference mode (BatchNorm uses its moving statistics), with
    its `.spec`, its layers computing as `kernels` say (`mindgan.cpu.Kernels`; default
    MindSpore's own). `path` may be a generator checkpoint, a resume state, or a file the MLP or
    DCGAN tutorials' own code saved. If `latent_size` is given, a mismatch is a CheckpointError."""
    weights, spec = generator_weights(read_checkpoint(path), path)
    if latent_size is not None and spec.latent_size != latent_size:
        raise CheckpointError(f"{path}: generator has latent size {spec.latent_size}, "
                              f"not the {latent_size} asked for")
    net = build_generator(spec) if kernels is None else build_generator(spec, kernels)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(weights[_canonical(p.name)].asnumpy()))
    net.set_train(False)
    return net


def as_generator(ckpt):
    """`ckpt` itself if it is already a loaded generator (a Cell), else `load_generator(ckpt)`."""
    return ckpt if isinstance(ckpt, nn.Cell) else load_generator(ckpt)
