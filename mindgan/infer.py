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

__all__ = ["generate", "iter_generate", "slerp", "interpolate", "main"]


def iter_generate(ckpt, num: int, seed: int | None = None, batch_size: int = 1000,
                  ) -> Iterator[np.ndarray]:
    """Yield `num` generated images in batches: float32 `[b, C, H, W]` in [-1, 1].

    `ckpt` is a checkpoint path (see `checkpoint.load_generator`) or a loaded generator.
    The noise is one stream drawn from `numpy.random.default_rng(seed)`, so the images
    do not depend on `batch_size` (beyond float rounding, ~1e-7). BatchNorm runs in
    inference mode; a generator passed in is given back in the mode it had.
    """
    import mindspore as ms

    from .checkpoint import as_generator
    from .gan import inference_mode

    net = as_generator(ckpt)
    rng = np.random.default_rng(seed)
    for done in range(0, num, batch_size):
        n = min(batch_size, num - done)
        z = rng.standard_normal((n, net.latent_size), dtype=np.float32)
        with inference_mode(net):
            out = net(ms.Tensor(z)).asnumpy()
        # MindSpore's CPU Tanh overshoots +-1 by ~1e-5; keep the documented range exact.
        yield np.clip(out, -1.0, 1.0)


def generate(ckpt, num: int = 25, seed: int | None = None, batch_size: int = 1000) -> np.ndarray:
    """`num` generated images, float32 `[num, C, H, W]` in [-1, 1] (see `iter_generate`)."""
    return np.concatenate(list(iter_generate(ckpt, num, seed, batch_size)))


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from a `[L]` to b `[L]` at fractions t `[T]` -> `[T, L]`.

    Gaussian latents live near a sphere; a straight line between two of them passes through
    the low-norm middle the generator rarely saw, a great circle does not."""
    a, b, t = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolate(ckpt, points: int, seed: int | None = None, steps: int = 16,
                walks: int = 1) -> np.ndarray:
    """A closed walk through `points` random latents, `steps` frames per leg.

    Returns float32 `[points * steps, walks, C, H, W]`: `walks` independent walks side by
    side in each frame."""
    import mindspore as ms

    if points < 2:
        raise ValueError(f"interpolation needs at least 2 points, not {points}")
    from .checkpoint import as_generator
    from .gan import inference_mode

    net = as_generator(ckpt)
    rng = np.random.default_rng(seed)
    anchors = rng.standard_normal((walks, points, net.latent_size))
    t = np.arange(steps) / steps
    frames = []
    for leg in range(points):
        z = np.stack([slerp(anchors[w, leg], anchors[w, (leg + 1) % points], t)
                      for w in range(walks)], axis=1)  # [steps, walks, L]
        with inference_mode(net):
            out = net(ms.Tensor(z.reshape(-1, net.latent_size))).asnumpy()
        frames.append(out.reshape(steps, walks, *out.shape[1:]))
    return np.concatenate(frames)


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
                      "  python -m mindgan.infer --ckpt G.ckpt --interpolate 6 --gif walk.gif")
    a = p.add_argument
    a("--ckpt", required=True, help="generator checkpoint: mindgan's generator.ckpt, a resume "
      "state (last.ckpt), or the MLP or DCGAN tutorial's own Generator*.ckpt")
    a("--num", type=positive("num"), default=25, help="how many images (default 25)")
    a("--seed", type=non_negative("seed"), default=None, help="noise seed; the same seed gives identical files")
    a("--out", default=None, help=f"grid of all images, sized to the count; written when given, "
      f"or as {DEFAULT_GRID} when no --npy or --save_individual is asked for")
    a("--save_individual", metavar="DIR", help="also write one PNG per image (grayscale or RGB)")
    a("--npy", metavar="FILE", help="also write the raw float32 [N, C, H, W] array in [-1, 1]")
    a("--interpolate", type=positive("interpolate"), metavar="K",
      help="instead: a GIF walking through K random latent points (spherical interpolation)")
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
    # Announced only once the checkpoint has loaded: a bad --ckpt overwrites nothing.
    if args.out is None and not (args.npy or args.save_individual):
        args.out = DEFAULT_GRID
        if Path(DEFAULT_GRID).exists() and not args.interpolate:
            print(f"note: overwriting ./{DEFAULT_GRID} (name another file with --out)",
                  file=sys.stderr)

    if args.interpolate:
        frames = interpolate(net, args.interpolate, args.seed)
        pictures = [grid_image(f, nrow=f.shape[0], scale=screen_scale(f.shape[-1], 224))
                    for f in frames]
        print(save_gif(pictures, args.gif, seconds_per_frame=0.08, hold_last=0.08))  # a loop
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
