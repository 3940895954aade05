"""`python -m mindgan.train`: the command line of `mindgan.training.train` (the library loop).

Thin on purpose: flags and data are checked here (a typo costs no graph compile), then
`mindgan.training.train` does the work. `--model` picks the family; its tutorial's
hyper-parameters are the defaults, and any flag given overrides them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import (
    Parser,
    add_runtime_flags,
    choose_kernels,
    non_negative,
    one_line_errors,
    parse,
    positive,
    start,
    unit_interval,
)
from .registry import FAMILY_NAMES, UPDATE_ORDERS

EXAMPLES = """examples:
  python -m mindgan.train --device_target GPU              # 50 epochs, averaged generator
  python -m mindgan.train --tutorial                        # the tutorial exactly: 200 epochs
  python -m mindgan.train --epochs 5 --output_dir runs/try  # a short run on the best device
  python -m mindgan.train --resume runs/try --epochs 10     # continue it to 10 epochs
  python -m mindgan.train --model dcgan-mnist               # TensorFlow's DCGAN on MNIST

model families (--model) and their defaults:
  mlp          the MindSpore tutorial's MLP GAN: 28x28, 200 epochs, batch 128, Adam(2e-4, 0.5);
               by default 50 epochs with --ema 0.999 --eval_every 10 instead (--tutorial: not)
  dcgan        MindSpore's DCGAN tutorial: 64x64 (16*2^k), 10 epochs, batch 128, Adam(2e-4, 0.5)
  dcgan-mnist  TensorFlow's DCGAN tutorial: 28x28, 50 epochs, batch 256, Adam(1e-4, 0.9)

Data-parallel, one worker per device (MindSpore's launcher; --batch_size stays global):
  msrun --worker_num 2 --local_worker_num 2 --master_port 8118 --log_dir runs/msrun_logs \\
        --join True python -m mindgan.train --device_target CPU --epochs 1 --output_dir runs/dp2

Each run folder holds checkpoints/ (generator.ckpt, discriminator.ckpt, last.ckpt for
resuming, generator_epoch_XXX.ckpt snapshots), samples/epoch_XXX.png, losses.csv,
loss_curve.png, training.gif and config.json."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m mindgan.train", epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Train a GAN on MNIST: the MindSpore tutorial's MLP GAN (GAN图像生成) "
                           "by default, or a convolutional family (--model). Defaults are the "
                           "chosen family's tutorial's, except that MLP runs average the generator "
                           "and stop at 50 epochs, which measured better (--tutorial: not). Under "
                           "msrun, each worker trains on its slice of every global batch.")
    # default=None everywhere: with --resume, only flags actually given override the saved run.
    a = p.add_argument
    a("--model", choices=FAMILY_NAMES, default=None,
      help="model family (default mlp); sets the defaults of the flags below")
    a("--conditional", action="store_true", default=None,
      help="conditional generation: G(z, y) and D(x, y) on the data's class labels (MNIST's digits; "
           "an image folder's first-level sub-folders, one class each, sorted by name); samples get "
           "a row per class and `python -m mindgan.infer --label 7` draws a chosen class")
    a("--condition", choices=("concat", "projection"), default=None,
      help="with --conditional: how D takes the label: concat (one-hot joined to its input, the cGAN "
           "form; the default for the convolutional families and with --tutorial) or projection "
           "(Miyato & Koyama: a label embedding dotted with D's last features; mlp's default)")
    a("--tutorial", action="store_true",
      help="exactly the tutorial's settings for --model (for mlp: 200 epochs, no averaging, no "
           "quick FID); without it, mlp runs use what measured better: --ema 0.999 --eval_every 10 "
           "--epochs 50 (see the README, 'Training')")
    a("--epochs", type=positive("epochs"), default=None,
      help="total number of epochs, counting those already done when resuming (default: the "
           "family's; for mlp 50, or the tutorial's 200 with --tutorial)")
    a("--batch_size", type=positive("batch_size"), default=None,
      help="images per step (default: the family's, 128 for mlp: 468 steps per epoch; the last "
           "partial batch is dropped)")
    a("--latent_size", type=positive("latent_size"), default=None,
      help="length of the noise vector z (default 100)")
    a("--lr", type=positive("lr", float), default=None,
      help="Adam learning rate for both nets (default: the family's, 2e-4 for mlp)")
    a("--beta1", type=unit_interval("beta1"), default=None, help="Adam beta1 (default: the family's, 0.5 for mlp)")
    a("--beta2", type=unit_interval("beta2"), default=None, help="Adam beta2 (default 0.999)")
    a("--image_size", type=positive("image_size"), default=None,
      help="side of the generated images (default: the family's); image files are resized to it "
           "(short side, then a centre crop); MNIST is 28. dcgan takes 16·2^k (16, 32, 64, 128, ...), "
           "dcgan-mnist a multiple of 4, dcgan-carpedm20 16 or more (48 for the anime-face walkthrough), "
           "mlp any size")
    a("--channels", type=int, choices=(1, 3), default=None,
      help="image channels: 1 (grayscale) or 3 (RGB) (default: 1 for MNIST, 3 for image files)")
    a("--ngf", type=positive("ngf"), default=None, help="generator width of the convolutional families (default 64)")
    a("--ndf", type=positive("ndf"), default=None,
      help="discriminator width of the convolutional families (default 64)")
    a("--noise", choices=("normal", "uniform"), default=None,
      help="z ~ N(0, 1) (default) or uniform in [-1, 1] (dcgan-carpedm20's default)")
    a("--loss", default=None, metavar="NAME",
      help="the GAN loss: bce (default: the tutorials' non-saturating BCE, on D's probabilities or "
           "logits as the family's D gives them), hinge (SAGAN/BigGAN), lsgan (least squares) or wgan-gp "
           "(Wasserstein with Gulrajani et al.'s gradient penalty, weight 10, at random interpolates of real "
           "and generated images); the last three work on D's raw score, so a D that ends in a Sigmoid is "
           "built without it")
    a("--update", choices=UPDATE_ORDERS, default=None,
      help="alternating (default, the MindSpore tutorials'): update D, then G from a fresh forward pass "
           "through the updated D; simultaneous (TensorFlow's DCGAN tutorial): both losses and both "
           "gradients from one forward pass, then both updates")
    a("--diffaugment", default=None, metavar="T1,T2",
      help="Differentiable Augmentation (Zhao et al. 2020) of every image D sees, real and generated, "
           "in both updates: any of color, translation, cutout, comma-separated (the paper's "
           "'color,translation,cutout' for small data sets); default off")
    a("--spectral_norm", action="store_true", default=None,
      help="spectral normalisation of D's weights (Miyato et al. 2018: each divided by its largest singular "
           "value, one power iteration per call, the iteration's vector saved with the run); default off")
    a("--r1", type=non_negative("r1", float), default=None, metavar="GAMMA",
      help="R1 penalty (Mescheder et al. 2018): GAMMA/2 times the mean squared norm of D's gradient at "
           "the real images, added to D's loss (e.g. 10; StyleGAN2 uses 0.1-100 by data set); D then "
           "gives raw scores and BCE works on them; costs a second backward pass; default 0 (off)")
    a("--r1_every", type=positive("r1_every"), default=None, metavar="K",
      help="lazy R1 (StyleGAN2's): the penalty on every K-th step only, with K times the gamma, saving "
           "most of its cost (default 1: every step)")
    a("--g_steps", type=positive("g_steps"), default=None,
      help="generator updates per discriminator update, on the same noise (default 1; dcgan-carpedm20: 2)")
    a("--ema", type=unit_interval("ema"), default=None,
      help="keep an exponential moving average of the generator with this decay (e.g. 0.999), "
           "updated in the compiled step; samples and generator.ckpt use it, generator_raw.ckpt "
           "keeps the raw weights (default: 0.999 for mlp, 0 (off) with --tutorial and for the "
           "other families)")
    a("--lr_decay_from", type=non_negative("lr_decay_from"), default=None, metavar="EPOCH",
      help="keep --lr for the first EPOCH epochs, then lower it linearly each epoch to lr/(n+1) "
           "in the last of the n remaining (pix2pix's schedule; ends at --epochs, so resuming "
           "with more epochs stretches it) (default 0: off, as the tutorial)")
    a("--eval_every", type=non_negative("eval_every"), default=None,
      help="every N epochs, a quick classifier FID (MNIST-shaped runs) against the MNIST test set, "
           "logged to metrics.csv and metrics.png; checkpoints/generator_best.ckpt keeps the best "
           "(default: 10 for mlp, 0 (off) with --tutorial and for the other families)")
    a("--eval_samples", type=positive("eval_samples"), default=None,
      help="generated images behind each quick FID (default 2000)")
    a("--num_samples", type=positive("num_samples"), default=None,
      help="images in each epoch's sample grid (default: the family's, 25 for mlp)")
    a("--seed", type=non_negative("seed"), default=None,
      help="seed for weights, data order and noise (default 0); same seed, same run on CPU")
    a("--data_dir", default=None,
      help="training data: a folder with the MNIST IDX files (default: $MINDGAN_DATA, else the "
           "repository's data/mnist), or a folder (searched recursively) or .zip of images")
    a("--background", default=None,
      help="colour that transparent pixels of image files become: white (default), black, gray, "
           "#rrggbb or r,g,b")
    a("--crop", type=positive("crop"), default=None,
      help="centre-crop image files to N x N pixels before resizing (carpedm20's --input_height: "
           "dcgan-carpedm20 defaults to its 108, for CelebA photos; the anime faces take 96); "
           "an image smaller than N is refused")
    a("--subset", type=positive("subset"), default=None,
      help="train on the first N images only (quick experiments)")
    a("--output_dir", default=None,
      help="run folder (default: a new runs/YYYYmmdd-HHMMSS); an existing non-empty one is refused")
    a("--resume", metavar="DIR", default=None,
      help="continue the run in DIR exactly where its last checkpoint left it")
    a("--save_every", type=positive("save_every"), default=None,
      help="write the checkpoints (last.ckpt for --resume, generator.ckpt, discriminator.ckpt) every N "
           "epochs (default 1, as the tutorial)")
    a("--snapshot_every", type=non_negative("snapshot_every"), default=None,
      help="epochs between generator_epoch_XXX.ckpt snapshots (default 0 = auto: every epoch for runs "
           "of up to 20 epochs, else every ceil(epochs/20), and always the last; sample grids likewise "
           "keep about 50 per run)")
    a("--max_steps", type=positive("max_steps"), default=None,
      help="stop after this many steps in total, saving everything (smoke tests)")
    a("--log_every", type=positive("log_every"), default=None,
      help="refresh the progress bar's losses every N steps (default 10)")
    a("--steps_per_call", type=non_negative("steps_per_call"), default=None,
      help="training steps compiled into one call (default 0 = auto: 12 for the tutorial's 468 "
           "steps per epoch, 1 for short runs); more means fewer host round trips, longer compile")
    a("--mode", choices=("graph", "pynative"), default=None,
      help="graph (default): the step compiled by mindspore.jit; pynative: eager, for debugging")
    a("--no_progress", action="store_true",
      help="no progress bar or progress lines (epoch summaries only)")
    add_runtime_flags(p, device_default=None)
    return p


def resolve_config(args: argparse.Namespace):
    """TrainConfig from the flags (`config.resolve_config`), or from the resumed run's
    config.json plus the run-control flags given. Raises ValueError (one line) on a conflict."""
    from dataclasses import fields

    from .config import TrainConfig, resolve_config

    given = {f.name: getattr(args, f.name, None) for f in fields(TrainConfig)}
    return resolve_config(given, tutorial=args.tutorial, resume=args.resume)


def _model_of(args: argparse.Namespace) -> str:
    """The family this command trains, known before MindSpore is imported."""
    if args.resume is not None:
        try:
            return json.loads((Path(args.resume) / "config.json").read_text()).get("model", "mlp")
        except (OSError, ValueError):
            return "mlp"  # resolve_config reports the problem
    return args.model or "mlp"


def main(argv=None) -> int:
    parser = build_parser()
    args = parse(parser, argv, convolutional=None)
    choose_kernels(parser, args, _model_of(args))  # must precede the first MindSpore import
    try:
        config = resolve_config(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))

    from .parallel import current, env_rank, is_scheduler

    if is_scheduler():  # msrun's coordinator: joins the workers, and ends when they do
        start(parser, config.device_target, config.mode)

    # Check what can be checked before a graph is compiled: the model, the data, their shapes.
    from .config import check_data, check_output_dir
    from .data import IdxFormatError, is_mnist_dir, load_training_data
    from .images import ImageSetError

    quiet = env_rank() != 0 and not args.verbose  # under msrun, rank 0 speaks for all
    source = "MNIST" if config.data_dir is None or is_mnist_dir(config.data_dir) else config.data_dir
    try:
        check_output_dir(config, args.resume)
        images, labels, classes = load_training_data(config, progress=not (args.no_progress or quiet),
                                                     resumed=bool(args.resume))
        config = check_data(config, images.shape, source=source, class_names=classes)
    except (FileNotFoundError, IdxFormatError, ImageSetError, ValueError) as exc:
        parser.error(str(exc))
    n = min(len(images), config.subset or len(images))

    from .training import TrainingDiverged, TrainingInterrupted, train

    device = start(parser, config.device_target, config.mode)
    workers = current()
    try:
        config = check_data(config, images.shape, workers.size, source, classes)
    except ValueError as exc:
        parser.error(str(exc))
    local_batch = config.batch_size // workers.size
    if not quiet:
        print(f"device: {device} (asked for {config.device_target}), mode: {config.mode}, "
              f"model: {config.spec.describe()}, {n} images from {source}, batch {config.batch_size}, "
              f"{n // config.batch_size} steps/epoch"
              + (f", {workers.size} msrun workers (batch {local_batch} each)"
                 if workers.size > 1 else ""), flush=True)
    try:
        with one_line_errors(parser, ValueError):  # a damaged checkpoint, a run already done
            run_dir = train(config, resume=args.resume, device=device, images=images, labels=labels,
                            progress=not args.no_progress, verbose=args.verbose)
    except TrainingInterrupted as exc:
        if quiet:
            return 130
        print(f"Interrupted at step {exc.step}; everything saved in {exc.run_dir}.\n"
              f"Resume with: {exc.resume_command}", flush=True)
        return 130
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"done: {run_dir} (checkpoints/, samples/, losses.csv, loss_curve.png, training.gif)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
