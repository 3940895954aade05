"""`python -m mindgan.train`: train the tutorial's GAN on MNIST.

Thin on purpose: flags are checked here (before MindSpore is imported, so a typo costs no
start-up time), then `mindgan.training.train` does the work.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import Parser, non_negative, positive, unit_interval
from .runtime import DEVICES, quiet_mindspore

EXAMPLES = """examples:
  python -m mindgan.train --device_target GPU              # the tutorial: 200 epochs
  python -m mindgan.train --epochs 5 --output_dir runs/try  # a short run on the best device
  python -m mindgan.train --resume runs/try --epochs 10     # continue it to 10 epochs

Each run folder holds checkpoints/ (generator.ckpt, discriminator.ckpt, last.ckpt for
resuming, generator_epoch_XXX.ckpt snapshots), samples/epoch_XXX.png, losses.csv,
loss_curve.png, training.gif and config.json."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m mindgan.train", epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Train the MindSpore tutorial's MLP GAN (GAN图像生成) on MNIST. "
                           "Defaults are the tutorial's.")
    # default=None everywhere: with --resume, only flags actually given override the saved run.
    a = p.add_argument
    a("--device_target", choices=DEVICES, default=None,
      help="where to train; auto (default) picks GPU, then Ascend, then CPU and logs the choice")
    a("--epochs", type=positive("epochs"), default=None,
      help="total number of epochs, counting those already done when resuming (default 200)")
    a("--batch_size", type=positive("batch_size"), default=None,
      help="images per step (default 128: 468 steps per epoch; the last partial batch is dropped)")
    a("--latent_size", type=positive("latent_size"), default=None,
      help="length of the noise vector z (default 100)")
    a("--lr", type=positive("lr", float), default=None, help="Adam learning rate for both nets (default 2e-4)")
    a("--beta1", type=unit_interval("beta1"), default=None, help="Adam beta1 (default 0.5)")
    a("--beta2", type=unit_interval("beta2"), default=None, help="Adam beta2 (default 0.999)")
    a("--seed", type=non_negative("seed"), default=None,
      help="seed for weights, data order and noise (default 0); same seed, same run on CPU")
    a("--data_dir", default=None,
      help="folder with the MNIST IDX files (default: $MINDGAN_DATA, else the repository's data/mnist)")
    a("--subset", type=positive("subset"), default=None,
      help="train on the first N images only (quick experiments)")
    a("--output_dir", default=None,
      help="run folder (default: a new runs/YYYYmmdd-HHMMSS); an existing non-empty one is refused")
    a("--resume", metavar="DIR", default=None,
      help="continue the run in DIR exactly where its last checkpoint left it")
    a("--save_every", type=positive("save_every"), default=None,
      help="write checkpoints and a generator snapshot every N epochs (default 1, as the tutorial)")
    a("--max_steps", type=positive("max_steps"), default=None,
      help="stop after this many steps in total, saving everything (smoke tests)")
    a("--log_every", type=positive("log_every"), default=None,
      help="refresh the progress bar's losses every N steps (default 10)")
    a("--steps_per_call", type=non_negative("steps_per_call"), default=None,
      help="training steps compiled into one call (default 0 = auto: 12 for the tutorial's 468 "
           "steps per epoch, 1 for short runs); more means fewer host round trips, longer compile")
    a("--mode", choices=("graph", "pynative"), default=None,
      help="graph (default): the step compiled by mindspore.jit; pynative: eager, for debugging")
    a("--verbose", action="store_true", help="show MindSpore's own INFO/WARNING log lines")
    a("--no_progress", action="store_true", help="no progress bar (epoch summaries only)")
    return p


def resolve_config(args: argparse.Namespace):
    """TrainConfig from the flags, or from the resumed run's config.json plus the run-control
    flags given. Raises ValueError (one line) on a conflict."""
    from dataclasses import fields

    from .training import TrainConfig

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if args.resume is None:
        return TrainConfig(**given)
    saved_path = Path(args.resume) / "config.json"
    if not (Path(args.resume) / "checkpoints" / "last.ckpt").is_file():
        raise ValueError(f"--resume {args.resume}: no checkpoints/last.ckpt there to resume from")
    saved = json.loads(saved_path.read_text())
    config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    for name, value in given.items():
        if name in TrainConfig.RUN_CONTROL:
            setattr(config, name, value)
        elif value != getattr(config, name):
            raise ValueError(f"--{name} {value} differs from the resumed run's {getattr(config, name)}; "
                             f"only {', '.join('--' + n for n in TrainConfig.RUN_CONTROL)} may change")
    return config


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_mindspore(args.verbose)
    try:
        config = resolve_config(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))

    # Check what can be checked before MindSpore starts: the data and its size.
    from .data import IdxFormatError, load_mnist

    try:
        images = load_mnist("train", config.data_dir)[0]
    except (FileNotFoundError, IdxFormatError) as exc:
        parser.error(str(exc))
    n = min(len(images), config.subset or len(images))
    if config.batch_size > n:
        parser.error(f"--batch_size {config.batch_size} is larger than the dataset ({n} images)")
    if config.output_dir and args.resume is None:
        out = Path(config.output_dir)
        if out.exists() and any(out.iterdir()):
            parser.error(f"--output_dir {out} exists and is not empty; use --resume {out} to "
                         f"continue that run, or choose another folder")

    from .runtime import DeviceUnavailable, setup
    from .training import TrainingDiverged, TrainingInterrupted, train

    try:
        device = setup(config.device_target, config.mode)
    except DeviceUnavailable as exc:
        parser.error(str(exc))
    print(f"device: {device} (asked for {config.device_target}), mode: {config.mode}, "
          f"{n} images, batch {config.batch_size}, {n // config.batch_size} steps/epoch", flush=True)
    try:
        run_dir = train(config, resume=args.resume, device=device, images=images,
                        progress=not args.no_progress)
    except TrainingInterrupted as exc:
        print(f"Interrupted at step {exc.step}; everything saved in {exc.run_dir}.\n"
              f"Resume with: {exc.resume_command}", flush=True)
        return 130
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"done: {run_dir} (checkpoints/, samples/, losses.csv, loss_curve.png, training.gif)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
