"""Generate images from a trained generator of any family: `python -m mindgan.infer --ckpt PATH`.

Importable: `generate(ckpt, num, seed)` returns the images; `iter_generate` yields them in
batches (bounded memory for large counts); `interpolate` walks the latent space. The image
shape comes from the checkpoint's model spec; a generator passed in keeps its train/eval mode.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from .cli import Parser, add_runtime_flags, non_negative, one_line_errors, parse, positive, start

__all__ = ["generate", "iter_generate", "label_indices", "label_grid", "slerp", "interpolate", "main"]


class LabelError(ValueError):
    """A label a generator does not have (one line naming what it has)."""


def label_indices(spec, labels, num: int, rng: np.random.Generator | None = None) -> np.ndarray | None:
    """The class index of each of `num` images for a generator of `spec`: int32 `[num]`, or
    None for an unconditional generator given no labels. `labels`: None (a conditional
    generator: drawn uniformly from `rng`), one class (index or name) for all, or a sequence
    of `num`. LabelError with one line for a label the generator does not have."""
    k = spec.num_classes
    if labels is None:
        return None if not k else (rng or np.random.default_rng()).integers(0, k, num).astype(np.int32)
    if not k:
        raise LabelError(f"--label {_show(labels)}: this is an unconditional generator ({spec.describe()}): "
                         f"it takes no labels")
    values = [labels] * num if isinstance(labels, (int, str, np.integer)) else list(labels)
    if len(values) != num:
        raise LabelError(f"{len(values)} labels for {num} images")
    return np.array([_class_index(spec, v) for v in values], np.int32)


def _show(labels) -> str:
    return str(labels) if isinstance(labels, (int, str, np.integer)) else ",".join(map(str, labels))


def _class_index(spec, value) -> int:
    names = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, (int, np.integer)) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        if 0 <= int(value) < spec.num_classes:
            return int(value)
        raise LabelError(f"--label {value}: the generator has {spec.num_classes} classes, 0-{spec.num_classes - 1}"
                         f" ({_some(names)})")
    raise LabelError(f"--label {value}: not a class of this generator (its classes: {_some(names)})")


def _some(names, most: int = 12) -> str:
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _draw(rng: np.random.Generator, n: int, latent_size: int, kind: str) -> np.ndarray:
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, (n, latent_size)).astype(np.float32)
    return rng.standard_normal((n, latent_size), dtype=np.float32)


def iter_generate(ckpt, num: int, seed: int | None = None, batch_size: int = 1000,
                  labels=None) -> Iterator[np.ndarray]:
    """Yield `num` generated images in batches: float32 `[b, C, H, W]` in [-1, 1].

    `ckpt` is a checkpoint path (see `checkpoint.load_generator`) or a loaded generator.
    The noise is one stream drawn from `numpy.random.default_rng(seed)` (N(0, 1), or uniform
    in [-1, 1] for a generator trained on that: `spec.noise`), so the images do not depend on
    `batch_size` (beyond float rounding, ~1e-7). A conditional generator makes the classes
    `labels` (see `label_indices`; by default uniformly drawn from a second stream of `seed`).
    BatchNorm runs in inference mode; a generator passed in is given back in the mode it had.
    """
    from .checkpoint import as_generator
    from .gan import sample

    net = as_generator(ckpt)
    rng = np.random.default_rng(seed)
    y = label_indices(net.spec, labels, num, np.random.default_rng(None if seed is None else [seed, 1]))
    for done in range(0, num, batch_size):
        n = min(batch_size, num - done)
        z = _draw(rng, n, net.latent_size, net.spec.noise)
        out = sample(net, z, None if y is None else y[done:done + n])
        # MindSpore's CPU Tanh overshoots +-1 by ~1e-5; keep the documented range exact.
        yield np.clip(out, -1.0, 1.0)


def generate(ckpt, num: int = 25, seed: int | None = None, batch_size: int = 1000, labels=None) -> np.ndarray:
    """`num` generated images, float32 `[num, C, H, W]` in [-1, 1] (see `iter_generate`;
    `labels`: one class, by index or name, or one per image, for a conditional generator)."""
    return np.concatenate(list(iter_generate(ckpt, num, seed, batch_size, labels)))


def label_grid(ckpt, labels, per_label: int = 10, seed: int | None = None) -> tuple[np.ndarray, list[str]]:
    """One row per class of `labels` (indices or names, or "all" for every class), the same
    `per_label` noise vectors along every row: (float32 `[len(labels) * per_label, C, H, W]`
    in [-1, 1], the rows' class names)."""
    from .checkpoint import as_generator
    from .gan import sample

    net = as_generator(ckpt)
    spec = net.spec
    if isinstance(labels, str) and labels == "all":
        labels = list(range(spec.num_classes))
        if not labels:
            raise LabelError(f"--label all: this is an unconditional generator ({spec.describe()}): it takes no labels")
    rows = label_indices(spec, labels, len(labels))
    z = _draw(np.random.default_rng(seed), per_label, net.latent_size, spec.noise)
    out = sample(net, np.tile(z, (len(rows), 1)), np.repeat(rows, per_label))
    names = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
    return np.clip(out, -1.0, 1.0), [names[r] for r in rows]


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from a `[L]` to b `[L]` at fractions t `[T]` -> `[T, L]`.

    Gaussian latents live near a sphere; a straight line between two of them passes through
    the low-norm middle the generator rarely saw, a great circle does not."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # (nearly) parallel: the great circle is the straight line
        return _lerp(a, b, t[:, 0])
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolate(ckpt, points: int, seed: int | None = None, steps: int = 16,
                walks: int = 1, labels=None) -> np.ndarray:
    """A closed walk through `points` random latents, `steps` frames per leg.

    Returns float32 `[points * steps, walks, C, H, W]` in [-1, 1]: `walks` independent walks
    side by side in each frame. A conditional generator walks the same latents once per class
    of `labels` (indices or names, or "all"; default all, at most ten) instead, so each column
    holds its class while the style moves in step across the columns. Latents are drawn as
    the generator was trained (`spec.noise`): normal ones along great circles (`slerp`),
    uniform ones along straight lines, which stay inside their cube."""
    if points < 2:
        raise ValueError(f"interpolation needs at least 2 points, not {points}")
    from .checkpoint import as_generator
    from .gan import sample

    net = as_generator(ckpt)
    spec = net.spec
    rows = None
    if spec.num_classes:
        if labels is None or (isinstance(labels, str) and labels == "all"):
            labels = list(range(min(spec.num_classes, 10)))
        rows = label_indices(spec, labels, len(labels))
        walks = 1
    elif labels is not None:
        label_indices(spec, labels, 1)  # the one-line refusal for an unconditional generator
    rng = np.random.default_rng(seed)
    anchors = _draw(rng, walks * points, net.latent_size, spec.noise).reshape(walks, points, -1)
    path = slerp if spec.noise != "uniform" else _lerp
    t = np.arange(steps) / steps
    frames = []
    for leg in range(points):
        z = np.stack([path(anchors[w, leg], anchors[w, (leg + 1) % points], t)
                      for w in range(walks)], axis=1).reshape(-1, net.latent_size)  # [steps * walks, L]
        if rows is None:
            out = sample(net, z)
        else:  # every frame's latent once per class, the classes side by side
            out = sample(net, np.repeat(z, len(rows), axis=0), np.tile(rows, len(z)))
        frames.append(np.clip(out, -1.0, 1.0).reshape(steps, -1, *out.shape[1:]))
    return np.concatenate(frames)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The straight line from a `[L]` to b `[L]` at fractions t `[T]` -> `[T, L]`."""
    t = np.asarray(t, np.float64)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


# ------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m mindgan.infer",
               description="Generate images from a trained generator checkpoint of any model "
                           "family (the architecture and image shape come from the file).",
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="examples:\n"
                      "  python -m mindgan.infer --ckpt pretrained/generator_mnist.ckpt --seed 1\n"
                      "  python -m mindgan.infer --ckpt runs/try/checkpoints/last.ckpt --num 100 "
                      "--out grid.png\n"
                      "  python -m mindgan.infer --ckpt G.ckpt --num 10000 --npy samples.npy "
                      "--save_individual digits/\n"
                      "  python -m mindgan.infer --ckpt G.ckpt --interpolate 6 --gif walk.gif\n"
                      "  python -m mindgan.infer --ckpt conditional.ckpt --interpolate 6 --label 3,7  # two columns\n"
                      "  python -m mindgan.infer --ckpt conditional.ckpt --label 7          # ten 7s\n"
                      "  python -m mindgan.infer --ckpt conditional.ckpt --label all --num 8  # a row per class")
    a = p.add_argument
    a("--ckpt", required=True, help="generator checkpoint: mindgan's generator.ckpt, a resume "
      "state (last.ckpt), or the MLP or DCGAN tutorial's own Generator*.ckpt")
    a("--num", type=positive("num"), default=None,
      help="how many images (default 25); with --label, how many of each label (default 10)")
    a("--label", default=None, metavar="LABELS",
      help="a conditional generator: the class to draw, by index or name (7, cat), several (0,3,7: one "
           "grid row each, the same noise down each column), or all (a row per class); without it a "
           "conditional generator draws classes uniformly")
    a("--seed", type=non_negative("seed"), default=None, help="noise seed; the same seed gives identical files")
    a("--out", default=None, help=f"grid of all images, sized to the count; written when given, "
      f"or as {DEFAULT_GRID} when no --npy or --save_individual is asked for")
    a("--save_individual", metavar="DIR", help="also write one PNG per image (grayscale or RGB)")
    a("--npy", metavar="FILE", help="also write the raw float32 [N, C, H, W] array in [-1, 1]")
    a("--interpolate", type=positive("interpolate"), metavar="K",
      help="instead: a GIF walking through K random latent points (spherical interpolation); "
           "a conditional generator walks them once per class side by side (--label picks the "
           "classes; default all, at most ten)")
    a("--gif", default="interpolation.gif", help="where --interpolate writes (default "
      "interpolation.gif)")
    a("--batch_size", type=positive("batch_size"), default=1000,
      help="images per forward pass; memory stays bounded for any --num (default 1000)")
    add_runtime_flags(p)
    return p


DEFAULT_GRID = "samples.png"


def main(argv=None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if args.interpolate is not None and args.interpolate < 2:
        parser.error("--interpolate needs at least 2 points")
    if not Path(args.ckpt).is_file():
        parser.error(f"--ckpt {args.ckpt}: no such file")
    from .checkpoint import load_generator
    from .viz import grid_image, save_gif, save_grid, screen_scale

    start(parser, args.device_target)
    with one_line_errors(parser):
        net = load_generator(args.ckpt)
    labels = None
    if args.label is not None:
        labels = "all" if args.label == "all" else [v.strip() for v in args.label.split(",") if v.strip()]
        if not labels:
            parser.error("--label: give a class (7, cat), several (0,3,7) or all")
        with one_line_errors(parser, LabelError):  # before anything is written
            if labels != "all":
                label_indices(net.spec, labels, len(labels))
            elif not net.spec.num_classes:
                label_grid(net, "all")
    args.num = args.num or (10 if labels is not None else 25)
    # Announced only once the checkpoint has loaded: a bad --ckpt overwrites nothing.
    if args.out is None and not (args.npy or args.save_individual):
        args.out = DEFAULT_GRID
        if Path(DEFAULT_GRID).exists() and not args.interpolate:
            print(f"note: overwriting ./{DEFAULT_GRID} (name another file with --out)",
                  file=sys.stderr)

    if args.interpolate:
        frames = interpolate(net, args.interpolate, args.seed, labels=labels)
        # Each column ~224 px, the whole frame within ~1000 px however many columns it has.
        scale = screen_scale(frames.shape[-1], min(224, 1000 // frames.shape[1]))
        pictures = [grid_image(f, nrow=f.shape[0], scale=scale) for f in frames]
        print(save_gif(pictures, args.gif, seconds_per_frame=0.08, hold_last=0.08))  # a loop
        if net.spec.num_classes:
            names = list(net.spec.class_names) or [str(i) for i in range(net.spec.num_classes)]
            shown = range(frames.shape[1]) if labels in (None, "all") else label_indices(net.spec, labels, len(labels))
            print(f"columns: {', '.join(names[i] for i in shown)}")
        return 0

    if labels is not None:
        images, rows = label_grid(net, labels, args.num, args.seed)
        args.num = len(images)
        writers = _Outputs(args)
        writers.add(images)
        if args.out:
            print(save_grid(writers.grid, args.out, nrow=len(images) // len(rows)))
        writers.close()
        print(f"rows: {', '.join(rows)}")
        return 0
    writers = _Outputs(args)
    for batch in iter_generate(net, args.num, args.seed, args.batch_size):
        writers.add(batch)
    if args.out:
        print(save_grid(writers.grid, args.out, scale=1 if args.num > 400 else None))
    writers.close()
    return 0


class _Outputs:
    """Writes each batch as it comes: individual PNGs and the .npy stream to disk, so only the
    grid (uint8-sized) is kept for the end."""

    def __init__(self, args):
        import imageio.v3 as iio

        self.args, self.iio, self.count, self.parts = args, iio, 0, []
        if args.save_individual:
            Path(args.save_individual).mkdir(parents=True, exist_ok=True)
        self.npy = None
        if args.npy:
            Path(args.npy).parent.mkdir(parents=True, exist_ok=True)

    def add(self, batch: np.ndarray) -> None:
        n = len(batch)
        if self.args.out:
            self.parts.append(batch.astype(np.float16))  # half the memory; grid pixels are 8-bit
        if self.args.npy:
            if self.npy is None:  # shaped by the first batch: [num, C, H, W]
                self.npy = np.lib.format.open_memmap(self.args.npy, mode="w+", dtype=np.float32,
                                                     shape=(self.args.num, *batch.shape[1:]))
            self.npy[self.count:self.count + n] = batch
        if self.args.save_individual:
            pixels = np.clip((batch + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
            for i, img in enumerate(pixels):
                img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)  # HxW or HxWx3
                self.iio.imwrite(Path(self.args.save_individual) / f"{self.count + i:05d}.png", img)
        self.count += n

    @property
    def grid(self) -> np.ndarray:
        return np.concatenate(self.parts).astype(np.float32)

    def close(self) -> None:
        if self.npy is not None:
            self.npy.flush()
            del self.npy
            print(self.args.npy)
        if self.args.save_individual:
            print(f"{self.count} images in {self.args.save_individual}")


if __name__ == "__main__":
    sys.exit(main())
