"""Benchmark: one GAN training step (D update, then G update), mindgan against PyTorch eager and
(with --tf_python) TensorFlow/Keras.

    python benchmarks/train_step.py --model mlp            # the tutorial's MLP, batch 128
    python benchmarks/train_step.py --model dcgan-mnist    # TensorFlow's DCGAN, batch 256
    python benchmarks/train_step.py --model dcgan          # MindSpore's DCGAN, 64x64x3, batch 128
    python benchmarks/train_step.py --model dcgan-carpedm20 --image_size 48   # the anime walkthrough's
    python benchmarks/train_step.py --model dcgan-mnist --update simultaneous --tf_python TF_VENV/bin/python

Each framework runs in its own process, alternating, for --rounds rounds (a framework sharing a
process with the other is slowed by it: the MLP once read 0.82 in-process against 1.13-1.31 run
apart). A round builds the networks, compiles, warms up and times --steps steps; the table gives
the median over rounds of each round's median step, and their ratio. mindgan's step is the one
`train()` runs (several steps compiled into one call where train() would, the CPU kernel choice
of `cpu.choose_cpu_kernels`); PyTorch's is the same networks, losses and update order, eager.
The table also names the CPU's instruction sets and the oneDNN convolution implementation that
ran (one short extra process with ONEDNN_VERBOSE=1). A benchmark, not a test: the numbers depend
on the machine and on what else it is doing.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_v", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRESETS = {"mlp": dict(batch_size=128, steps=200, warmup=24),
           "dcgan-mnist": dict(batch_size=256, steps=10, warmup=2),
           "dcgan": dict(batch_size=128, steps=6, warmup=2),
           "dcgan-carpedm20": dict(batch_size=64, steps=6, warmup=2)}
RGB = ("dcgan", "dcgan-carpedm20")  # families benchmarked on RGB images of --image_size


def training_images(model: str, image_size: int, n: int) -> np.ndarray:
    """uint8 `[n, C, S, S]`: MNIST for the 28x28 families, random RGB for the RGB ones (a step's
    time does not depend on what the pixels show)."""
    if model in RGB:
        return np.random.default_rng(0).integers(0, 256, (n, 3, image_size, image_size), dtype=np.uint8)
    from mindgan.data import load_mnist

    return load_mnist("train")[0][:n, None]


def time_calls(run, calls: int, warmup: int) -> tuple[float, list[float]]:
    """(first call's seconds, seconds of each timed call after `warmup` more)."""
    start = time.perf_counter()
    run(0)
    first = time.perf_counter() - start
    for i in range(warmup):
        run(1 + i)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        run(1 + warmup + i)
        times.append(time.perf_counter() - start)
    return first, times


def mindgan_worker(args) -> dict:
    from mindgan.cpu import choose_cpu_kernels

    kernels = choose_cpu_kernels(args.model)  # before MindSpore loads, as the CLI does
    import mindspore as ms

    from mindgan.config import TrainConfig
    from mindgan.cpu import decide
    from mindgan.data import batch_indices
    from mindgan.gan import auto_steps_per_call, build_gan, make_train_step, steps_noise
    from mindgan.runtime import HostSync, setup

    setup("CPU", "graph")
    config = TrainConfig(model=args.model, batch_size=args.batch_size, update=args.update,
                         diffaugment=args.diffaugment, spectral_norm=args.spectral_norm,
                         loss=args.loss, r1=args.r1,
                         **({"image_size": args.image_size} if args.model in RGB else {}))
    # MNIST; the Twemoji set's size for dcgan; the anime faces' for carpedm20's
    n = {"dcgan": 3838, "dcgan-carpedm20": 20000}.get(args.model, 60000)
    steps_per_epoch = n // config.batch_size
    per_call = args.steps_per_call or auto_steps_per_call(steps_per_epoch, config.epochs * steps_per_epoch)
    if args.update == "simultaneous":
        per_call = 1  # what train() runs (gan.make_train_step)
    images = training_images(args.model, config.image_size, max(4 * config.batch_size, per_call * config.batch_size))
    config = dataclasses.replace(config, channels=images.shape[1])
    augment = None
    if config.diffaugment:
        from mindgan.augment import DiffAugment, parse_policy

        augment = DiffAugment(parse_policy(config.diffaugment), config.image_size)
        augment.set_train(True)
    from mindgan.penalties import GP_WEIGHT, Interpolation, penalty_for

    penalty = penalty_for(config.spec, Interpolation() if config.loss in GP_WEIGHT else None)
    step_nets = build_gan(config, decide("CPU", args.model))
    step_fn = make_train_step(*step_nets, steps=per_call, update=args.update,
                              g_steps=config.g_steps, augment=augment, loss=config.loss, penalty=penalty)
    dataset = ms.Tensor(images)
    order = batch_indices(len(images), config.batch_size, 0, 0)
    sync = HostSync(enabled=True)

    def run(i):
        rows = [(i * per_call + k) % len(order) for k in range(per_call)]
        z = steps_noise(0, i * per_call, per_call, config.batch_size, config.latent_size, config.noise)
        sync.fetch(step_fn(dataset, ms.Tensor(order[rows]), ms.Tensor(z)))

    first, times = time_calls(run, max(1, args.steps // per_call), max(1, args.warmup // per_call))
    from mindgan.models import count_params

    return {"step_s": [t / per_call for t in times], "first_s": first, "per_call": per_call,
            "version": f"MindSpore {ms.__version__}", "kernels": kernels,
            "params": count_params(step_nets[0]) + count_params(step_nets[1]), **peak_memory()}


def torch_nets(model: str, image_size: int):
    """PyTorch twins of mindgan's families: (G, D, D gives logits?)."""
    from torch import nn

    if model == "mlp":
        g = nn.Sequential(nn.Linear(100, 128), nn.ReLU(),
                          nn.Linear(128, 256), nn.BatchNorm1d(256), nn.ReLU(),
                          nn.Linear(256, 512), nn.BatchNorm1d(512), nn.ReLU(),
                          nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
                          nn.Linear(1024, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
        d = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                          nn.LeakyReLU(0.2), nn.Linear(256, 1), nn.Sigmoid())
        return g, d, False
    if model == "dcgan-mnist":  # TensorFlow's: 'same' padding of 5x5 stride-2 = pad 2, output_padding 1
        slope, bn = 0.3, dict(momentum=0.01, eps=1e-3)
        g = nn.Sequential(nn.Linear(100, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256, **bn),
                          nn.LeakyReLU(slope), nn.Unflatten(1, (256, 7, 7)),
                          nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128, **bn),
                          nn.LeakyReLU(slope),
                          nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False),
                          nn.BatchNorm2d(64, **bn), nn.LeakyReLU(slope),
                          nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1, bias=False), nn.Tanh())
        d = nn.Sequential(nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(slope), nn.Dropout(0.3),
                          nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(slope), nn.Dropout(0.3),
                          nn.Flatten(), nn.Linear(7 * 7 * 128, 1))
        return g, d, True
    if model == "dcgan-carpedm20":  # 5x5 stride-2 'same' at even sizes: pad 2, output_padding 1
        s = [-(-image_size // k) for k in (1, 2, 4, 8, 16)]
        widths = [512, 256, 128, 64, 3]
        g_layers = [nn.Linear(100, 512 * s[4] * s[4]), nn.Unflatten(1, (512, s[4], s[4])), nn.BatchNorm2d(512),
                    nn.ReLU()]
        for k in range(4):
            g_layers.append(nn.ConvTranspose2d(widths[k], widths[k + 1], 5, 2, 2, output_padding=1))
            g_layers += [nn.BatchNorm2d(widths[k + 1]), nn.ReLU()] if k < 3 else [nn.Tanh()]
        d_layers = []
        for k in range(4):
            d_layers.append(nn.Conv2d(widths[4 - k], widths[3 - k], 5, 2, 2))
            d_layers += ([nn.BatchNorm2d(widths[3 - k])] if k else []) + [nn.LeakyReLU(0.2)]
        d_layers += [nn.Flatten(), nn.Linear(512 * s[4] * s[4], 1)]
        return nn.Sequential(*g_layers), nn.Sequential(*d_layers), True
    blocks = {16: 2, 32: 3, 64: 4, 128: 5}[image_size]
    width = 64 * 2 ** (blocks - 1)
    g_layers = [nn.Unflatten(1, (100, 1, 1)), nn.ConvTranspose2d(100, width, 4, 1, 0, bias=False),
                nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(blocks - 1):
        g_layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                     nn.BatchNorm2d(width // 2), nn.ReLU()]
        width //= 2
    g_layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
    d_layers = [nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    width = 64
    for _ in range(blocks - 1):
        d_layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                     nn.LeakyReLU(0.2)]
        width *= 2
    d_layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten(), nn.Sigmoid()]
    return nn.Sequential(*g_layers), nn.Sequential(*d_layers), False


def torch_worker(args) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    image_size = args.image_size if args.model in RGB else 28
    g, d, logits = torch_nets(args.model, image_size)
    lr, beta1 = {"mlp": (2e-4, 0.5), "dcgan-mnist": (1e-4, 0.9)}.get(args.model, (2e-4, 0.5))
    g_steps = 2 if args.model == "dcgan-carpedm20" else 1
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(beta1, 0.999))
    bce = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
    images = training_images(args.model, image_size, 4 * args.batch_size)
    data = torch.from_numpy(images.astype(np.float32) / 127.5 - 1)
    ones, zeros = torch.ones(args.batch_size, 1), torch.zeros(args.batch_size, 1)
    rng = np.random.default_rng(0)

    def run(i):
        real = data[torch.from_numpy(rng.integers(0, len(data), args.batch_size))]
        z = torch.randn(args.batch_size, 100)
        # mindgan's order: D on real and G(z) (G run inside D's update), then G on a new G(z).
        opt_d.zero_grad()
        loss_d = bce(d(real), ones) + bce(d(g(z).detach()), zeros)
        loss_d.backward()
        opt_d.step()
        for _ in range(g_steps):  # carpedm20's: G twice on the same z
            opt_g.zero_grad()
            loss_g = bce(d(g(z)), ones)
            loss_g.backward()
            opt_g.step()
        float(loss_d), float(loss_g)

    first, times = time_calls(run, args.steps, args.warmup)
    return {"step_s": times, "first_s": first, "version": f"PyTorch {torch.__version__}",
            "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in list(g.parameters()) + list(d.parameters())), **peak_memory()}


def keras_nets(model: str, image_size: int):
    """TensorFlow/Keras twins: (G, D, D gives logits?). dcgan-mnist is TensorFlow's DCGAN tutorial's
    own make_generator_model / make_discriminator_model; mlp the MindSpore tutorial's MLP in Keras;
    dcgan and dcgan-carpedm20 the same networks as mindgan's, written in Keras (NHWC)."""
    import tensorflow as tf
    from tensorflow.keras import layers

    seq = tf.keras.Sequential
    if model == "mlp":
        g = seq([layers.Input((100,)), layers.Dense(128), layers.ReLU(),
                 layers.Dense(256), layers.BatchNormalization(), layers.ReLU(),
                 layers.Dense(512), layers.BatchNormalization(), layers.ReLU(),
                 layers.Dense(1024), layers.BatchNormalization(), layers.ReLU(),
                 layers.Dense(784, activation="tanh"), layers.Reshape((28, 28, 1))])
        d = seq([layers.Input((28, 28, 1)), layers.Flatten(), layers.Dense(512), layers.LeakyReLU(0.2),
                 layers.Dense(256), layers.LeakyReLU(0.2), layers.Dense(1, activation="sigmoid")])
        return g, d, False
    if model == "dcgan-mnist":  # the tutorial's code, as published
        g = seq([layers.Input((100,)), layers.Dense(7 * 7 * 256, use_bias=False), layers.BatchNormalization(),
                 layers.LeakyReLU(), layers.Reshape((7, 7, 256)),
                 layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
                 layers.BatchNormalization(), layers.LeakyReLU(),
                 layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
                 layers.BatchNormalization(), layers.LeakyReLU(),
                 layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False,
                                        activation="tanh")])
        d = seq([layers.Input((28, 28, 1)), layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
                 layers.LeakyReLU(), layers.Dropout(0.3),
                 layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"), layers.LeakyReLU(),
                 layers.Dropout(0.3), layers.Flatten(), layers.Dense(1)])
        return g, d, True
    if model == "dcgan-carpedm20":
        s = [-(-image_size // k) for k in (1, 2, 4, 8, 16)]
        widths = [512, 256, 128, 64, 3]
        g_layers = [layers.Input((100,)), layers.Dense(512 * s[4] * s[4]), layers.Reshape((s[4], s[4], 512)),
                    layers.BatchNormalization(momentum=0.9, epsilon=1e-5), layers.ReLU()]
        for k in range(4):
            g_layers.append(layers.Conv2DTranspose(widths[k + 1], 5, strides=2, padding="same"))
            g_layers += ([layers.BatchNormalization(momentum=0.9, epsilon=1e-5), layers.ReLU()] if k < 3
                         else [layers.Activation("tanh")])
        d_layers = [layers.Input((image_size, image_size, 3))]
        for k in range(4):
            d_layers.append(layers.Conv2D(widths[3 - k], 5, strides=2, padding="same"))
            d_layers += ([layers.BatchNormalization(momentum=0.9, epsilon=1e-5)] if k else []) + [layers.LeakyReLU(0.2)]
        d_layers += [layers.Flatten(), layers.Dense(1)]
        return seq(g_layers), seq(d_layers), True
    blocks = {16: 2, 32: 3, 64: 4, 128: 5}[image_size]
    width = 64 * 2 ** (blocks - 1)
    g_layers = [layers.Input((100,)), layers.Reshape((1, 1, 100)),
                layers.Conv2DTranspose(width, 4, strides=1, padding="valid", use_bias=False),
                layers.BatchNormalization(), layers.ReLU()]
    for _ in range(blocks - 1):
        g_layers += [layers.Conv2DTranspose(width // 2, 4, strides=2, padding="same", use_bias=False),
                     layers.BatchNormalization(), layers.ReLU()]
        width //= 2
    g_layers += [layers.Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=False, activation="tanh")]
    d_layers = [layers.Input((image_size, image_size, 3)),
                layers.Conv2D(64, 4, strides=2, padding="same", use_bias=False), layers.LeakyReLU(0.2)]
    width = 64
    for _ in range(blocks - 1):
        d_layers += [layers.Conv2D(width * 2, 4, strides=2, padding="same", use_bias=False),
                     layers.BatchNormalization(), layers.LeakyReLU(0.2)]
        width *= 2
    d_layers += [layers.Conv2D(1, 4, strides=1, padding="valid", use_bias=False), layers.Flatten(),
                 layers.Activation("sigmoid")]
    return seq(g_layers), seq(d_layers), False


def tensorflow_worker(args) -> dict:
    """The Keras twins' step in a `tf.function`: alternating (D, then G from a fresh forward pass,
    `g_steps` times) or, with --update simultaneous, the DCGAN tutorial's train_step (one forward
    pass, both gradients)."""
    import tensorflow as tf

    tf.random.set_seed(0)
    image_size = args.image_size if args.model in RGB else 28
    g, d, logits = keras_nets(args.model, image_size)
    lr, beta1 = {"mlp": (2e-4, 0.5), "dcgan-mnist": (1e-4, 0.9)}.get(args.model, (2e-4, 0.5))
    g_steps = 2 if args.model == "dcgan-carpedm20" else 1
    opt_g, opt_d = (tf.keras.optimizers.Adam(lr, beta_1=beta1) for _ in range(2))
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=logits)
    channels = 3 if args.model in RGB else 1
    images = np.random.default_rng(0).uniform(-1, 1, (4 * args.batch_size, image_size, image_size, channels))
    data = tf.constant(images.astype(np.float32))
    b = args.batch_size

    @tf.function
    def alternating(real, z):
        with tf.GradientTape() as tape:
            d_real, d_fake = d(real, training=True), d(g(z, training=True), training=True)
            loss_d = bce(tf.ones_like(d_real), d_real) + bce(tf.zeros_like(d_fake), d_fake)
        opt_d.apply_gradients(zip(tape.gradient(loss_d, d.trainable_variables), d.trainable_variables))
        for _ in range(g_steps):
            with tf.GradientTape() as tape:
                d_fake = d(g(z, training=True), training=True)
                loss_g = bce(tf.ones_like(d_fake), d_fake)
            opt_g.apply_gradients(zip(tape.gradient(loss_g, g.trainable_variables), g.trainable_variables))
        return loss_d, loss_g

    @tf.function
    def simultaneous(real, z):  # the DCGAN tutorial's train_step
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            fake = g(z, training=True)
            d_real, d_fake = d(real, training=True), d(fake, training=True)
            loss_g = bce(tf.ones_like(d_fake), d_fake)
            loss_d = bce(tf.ones_like(d_real), d_real) + bce(tf.zeros_like(d_fake), d_fake)
        opt_g.apply_gradients(zip(gen_tape.gradient(loss_g, g.trainable_variables), g.trainable_variables))
        opt_d.apply_gradients(zip(disc_tape.gradient(loss_d, d.trainable_variables), d.trainable_variables))
        return loss_d, loss_g

    step = simultaneous if args.update == "simultaneous" else alternating
    rng = np.random.default_rng(0)

    def run(i):
        real = tf.gather(data, rng.integers(0, len(images), b))
        z = tf.constant(rng.standard_normal((b, 100)).astype(np.float32))
        loss_d, loss_g = step(real, z)
        float(loss_d), float(loss_g)

    first, times = time_calls(run, args.steps, args.warmup)
    count = sum(int(np.prod(v.shape)) for v in g.trainable_variables + d.trainable_variables)
    return {"step_s": times, "first_s": first, "version": f"TensorFlow {tf.__version__}", "params": count,
            "update": args.update if args.update == "simultaneous" else "alternating", **peak_memory()}


def peak_memory() -> dict:
    """This process's peak resident memory, MiB."""
    import resource

    return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def onednn_worker(args) -> None:
    """Two mindgan steps; stdout carries oneDNN's verbose lines (ONEDNN_VERBOSE=1 is set by
    the parent before this process starts)."""
    args.steps, args.warmup, args.steps_per_call = 1, 0, 1
    mindgan_worker(args)


def conv_implementations(args, framework: str = "mindgan") -> str:
    """The oneDNN implementations a framework's step ran its convolutions with, and how often:
    mindgan's two steps, or (framework "tensorflow") the TensorFlow twin's first and one more."""
    if framework == "tensorflow":
        cmd = [args.tf_python, __file__, "--worker", "tensorflow", *forwarded(args), "--steps", "1", "--warmup", "0"]
    else:
        cmd = [sys.executable, __file__, "--worker", "onednn", *forwarded(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "ONEDNN_VERBOSE": "1"}).stdout
    seen = Counter()
    for line in out.splitlines():
        parts = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in parts:
            i = parts.index("exec")
            if len(parts) > i + 3 and parts[i + 2].startswith(("convolution", "deconvolution")):
                seen[f"{parts[i + 2]}:{parts[i + 3]}"] += 1
    return ", ".join(f"{k} x{v}" for k, v in seen.most_common()) or "no oneDNN convolutions"


def forwarded(args) -> list[str]:
    return ["--model", args.model, "--batch_size", str(args.batch_size), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--image_size", str(args.image_size),
            "--steps_per_call", str(args.steps_per_call), "--update", args.update,
            f"--diffaugment={args.diffaugment}", "--loss", args.loss, "--r1", str(args.r1)] + (
                ["--spectral_norm"] if args.spectral_norm else [])


def run_worker(args, which: str) -> dict:
    python = {"tensorflow": args.tf_python, "torch": args.torch_python}.get(which) or sys.executable
    cmd = [python, __file__, "--worker", which, *forwarded(args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{which} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--model", choices=tuple(PRESETS), default="mlp")
    p.add_argument("--batch_size", type=int, default=None, help="default: the family's (128, 256, 128)")
    p.add_argument("--image_size", type=int, default=64, help="image side of the RGB families (default 64)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per round (default 200 mlp, 10 dcgan-mnist, 6 dcgan)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps after the first call")
    p.add_argument("--rounds", type=int, default=3, help="processes per framework, alternating (default 3)")
    p.add_argument("--steps_per_call", type=int, default=0,
                   help="mindgan steps per compiled call (default 0: what train() picks for the family's run)")
    p.add_argument("--update", choices=("alternating", "simultaneous"), default="alternating",
                   help="mindgan's update order (default alternating; the PyTorch twin always alternates)")
    p.add_argument("--diffaugment", default="", metavar="T1,T2",
                   help="mindgan's DiffAugment transforms before D (default none; the PyTorch twin has none)")
    p.add_argument("--spectral_norm", action="store_true", help="mindgan's D spectrally normalised (the twin's is not)")
    p.add_argument("--loss", default="bce", help="mindgan's loss (bce, hinge, lsgan, wgan-gp; the twin keeps BCE)")
    p.add_argument("--r1", type=float, default=0.0, help="mindgan's R1 gamma (the twin has none)")
    p.add_argument("--no_torch", action="store_true", help="mindgan only")
    p.add_argument("--no_onednn", action="store_true", help="skip the ONEDNN_VERBOSE probe")
    p.add_argument("--torch_python", metavar="PATH",
                   help="a Python with PyTorch, if not this one (e.g. a virtual environment with NumPy 2)")
    p.add_argument("--tf_python", metavar="PATH",
                   help="a Python with tensorflow-cpu (its own virtual environment: it needs NumPy 2, MindSpore "
                        "2.10 NumPy < 2): adds TensorFlow/Keras twins as a third peer")
    p.add_argument("--worker", choices=("mindgan", "torch", "onednn", "tensorflow"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name, value in PRESETS[args.model].items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    if args.worker:
        result = {"mindgan": mindgan_worker, "torch": torch_worker, "onednn": onednn_worker,
                  "tensorflow": tensorflow_worker}[args.worker](args)
        if result is not None:
            print(json.dumps(result), flush=True)
        return 0

    from mindgan.cpu import cpu_flags

    flags = cpu_flags()
    isa = "/".join(f for f in ("avx2", "avx512f", "amx_tile") if f in flags) or "no AVX2"
    frameworks = ["mindgan"]
    if not args.no_torch:
        probe = subprocess.run([args.torch_python or sys.executable, "-c", "import torch"], capture_output=True)
        if probe.returncode == 0:
            frameworks.append("torch")
        else:
            print("PyTorch is not installed: no PyTorch peer (pip install torch, or --torch_python PATH)",
                  file=sys.stderr)
    if args.tf_python:
        frameworks.append("tensorflow")
    results = {f: [] for f in frameworks}
    for r in range(args.rounds):
        for f in frameworks:
            results[f].append(run_worker(args, f))
            print(f"round {r + 1}/{args.rounds} {f}: {statistics.median(results[f][-1]['step_s']) * 1e3:.1f} ms/step",
                  file=sys.stderr, flush=True)
    impl = "" if args.no_onednn else conv_implementations(args)
    tf_impl = "" if args.no_onednn or not args.tf_python else conv_implementations(args, "tensorflow")

    def summary(f):
        medians = [statistics.median(x["step_s"]) for x in results[f]]
        return statistics.median(medians), min(medians), max(medians)

    mg = summary("mindgan")
    info = results["mindgan"][0]
    print(f"\n{args.model}, batch {args.batch_size}"
          + (f", {args.image_size}x{args.image_size}x3" if args.model in RGB else "")
          + f", fp32 on {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}, {isa}); "
          f"{args.rounds} alternating processes per framework, {args.steps} timed steps each; "
          f"mindgan's update: {args.update}")
    counts = {f: results[f][0]["params"] for f in frameworks}
    if len(set(counts.values())) > 1:
        raise SystemExit(f"the twins are not the same networks: trainable parameters {counts}")
    memory = {f: max(x["peak_mib"] for x in results[f]) for f in frameworks}
    print(f"{counts['mindgan']:,} trainable parameters in every framework")
    print("| framework | step (median of rounds) | rounds' medians | first call | peak memory | notes |\n"
          "|---|---|---|---|---|---|")
    notes = {"mindgan": f"{args.update}; {info['per_call']} steps per call; CPU kernels: {info['kernels']}"
                        + (f"; oneDNN conv: {impl}" if impl else ""),
             "torch": f"eager, alternating; {results['torch'][0]['threads'] if 'torch' in results else ''} threads; "
                      f"its own Python, {args.torch_python or sys.executable}",
             "tensorflow": f"Keras, tf.function; {args.update}; its own Python, {args.tf_python}"
                           + (f"; oneDNN conv: {tf_impl}" if tf_impl else "")}
    for f in frameworks:
        mid, low, high = summary(f)
        first = statistics.median(x["first_s"] for x in results[f])
        print(f"| {results[f][0]['version']} | {mid * 1e3:.1f} ms | {low * 1e3:.1f}-{high * 1e3:.1f} ms "
              f"| {first:.1f} s | {memory[f]:.0f} MiB | {notes[f]} |")
    for f, name in (("torch", "PyTorch"), ("tensorflow", "TensorFlow")):
        if f in results:
            print(f"| ratio mindgan / {name} | {mg[0] / summary(f)[0]:.2f} | | | | <= 1.0 is the goal |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
