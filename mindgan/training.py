"""The training loop: `train(config)` runs the compiled GAN step (`mindgan.gan`) epoch by epoch
and leaves checkpoints, samples, a loss log and plots in the run folder (`mindgan.rundir`);
an interrupted run continues exactly with `resume`.

This is the library; `python -m mindgan.train` (module `train`) is its command line.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import mindspore as ms
import numpy as np

from . import parallel
from .augment import DiffAugment, parse_policy
from .checkpoint import load_state
from .config import TrainConfig, check_data, check_resume
from .cpu import decide
from .data import FEW_IMAGES, batch_indices
from .gan import GeneratorEMA, auto_steps_per_call, build_gan, fixed_noise, make_train_step, steps_noise
from .hooks import run_hooks
from .models import build_generator
from .penalties import GP_WEIGHT, Interpolation, penalty_for, r1_steps
from .rundir import LOG_COLUMNS, prepare_run_dir, write_config
from .runtime import HostSync, StopRequest

__all__ = ["TrainConfig", "train", "Run", "TrainingDiverged", "TrainingInterrupted", "LOG_COLUMNS"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is left as it was."""


class TrainingInterrupted(Exception):
    """Stopped by SIGINT after saving the resume state; `.resume_command` continues it."""

    def __init__(self, run_dir: Path, step: int, workers: int = 1):
        self.run_dir, self.step = run_dir, step
        self.resume_command = f"python -m mindgan.train --resume {run_dir}"
        if workers > 1:
            self.resume_command = (f"msrun --worker_num {workers} <the same msrun options> "
                                   + self.resume_command)
        super().__init__(f"interrupted at step {step}; state saved. Resume with: "
                         f"{self.resume_command}")


def _training_images(config: TrainConfig, images: np.ndarray | None, labels, workers: int,
                     resumed: bool) -> tuple[TrainConfig, np.ndarray, np.ndarray | None]:
    """The config with the data's channels (and classes), the training set as uint8
    `[N, C, H, W]` and, for a conditional run, its labels int32 `[N]` (None otherwise), checked
    against it (`config.check_data`, as the command line checks it)."""
    classes = None
    if images is None:
        from .data import load_training_data
        images, labels, classes = load_training_data(config, resumed=resumed)
    elif labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise ValueError(f"labels must be integers >= 0, one per image ({len(images)}), not "
                             f"{labels.dtype} {list(labels.shape)}")
        classes = config.class_names or tuple(str(k) for k in range(int(labels.max()) + 1))
    x = images if images.ndim == 4 else images[:, None]
    if x.dtype != np.uint8:
        raise ValueError(f"training images must be uint8 in 0..255, not {x.dtype}")
    config = check_data(config, x.shape, workers, source="the data", class_names=classes)
    if not config.conditional:
        labels = None
    elif labels.max() >= config.spec.num_classes:
        raise ValueError(f"label {int(labels.max())} is not one of the {config.spec.num_classes} classes "
                         f"({', '.join(config.class_names)})")
    if config.subset:
        x, labels = x[: config.subset], None if labels is None else labels[: config.subset]
    return config, x, None if labels is None else labels.astype(np.int32)


@dataclasses.dataclass
class Run:
    """A run in progress: what the loop and its hooks (`mindgan.hooks`) share. `step` is the
    global step done; `shown` is the generator that samples and is saved as generator.ckpt
    (the average with --ema, else `net_g` itself)."""
    config: TrainConfig
    run_dir: Path
    workers: parallel.Workers
    steps_per_epoch: int
    total_steps: int
    net_g: ms.nn.Cell
    net_d: ms.nn.Cell
    opt_g: ms.nn.Cell
    opt_d: ms.nn.Cell
    ema: GeneratorEMA | None
    shown: ms.nn.Cell
    noise_fixed: np.ndarray
    augment: DiffAugment | None = None
    interpolate: Interpolation | None = None  # WGAN-GP's draws of interpolates
    step: int = 0

    @property
    def master(self) -> bool:
        """The one process that writes the run folder (rank 0 under msrun)."""
        return self.workers.main

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def cells(self) -> list:
        """Everything the resume state holds."""
        return ([self.net_g, self.net_d, self.opt_g, self.opt_d] + ([self.ema] if self.ema else [])
                + [cell for cell in (self.augment, self.interpolate) if cell is not None])


def _start(config: TrainConfig, resume, images, labels, device: str, talk: bool):
    """The run's folder, networks (with, when resuming, their saved state), data and labels:
    (Run, images, labels or None)."""
    workers = parallel.current()
    if resume is not None:
        check_resume(config, resume)
    config, data, labels = _training_images(config, images, labels, workers.size, resume is not None)
    if workers.main:
        run_dir = prepare_run_dir(config.output_dir, resume)
    else:  # rank 0 creates (and names) the folder; the others only read its last.ckpt
        run_dir = Path(resume if resume is not None else config.output_dir or "runs")
    # The caller's config is left as it was; the run's own records its folder.
    config = dataclasses.replace(config, output_dir=str(run_dir))
    steps_per_epoch = len(data) // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    kernels = decide(device, config.model)  # once per process; the layers are told, not asked
    net_g, net_d, opt_g, opt_d = build_gan(config, kernels)
    parallel.shard(net_g, workers)
    parallel.shard(net_d, workers)
    ema = GeneratorEMA(net_g, config.ema) if config.ema else None
    augment = DiffAugment(parse_policy(config.diffaugment), config.image_size, config.seed) \
        if config.diffaugment else None
    if augment is not None:
        augment.set_train(True)
        parallel.shard(augment, workers)
    interpolate = Interpolation(config.seed) if config.spec.loss in GP_WEIGHT else None
    if interpolate is not None:
        parallel.shard(interpolate, workers)
    run = Run(config, run_dir, workers, steps_per_epoch, total_steps, net_g, net_d, opt_g, opt_d,
              ema, build_generator(config.spec, kernels) if ema else net_g,
              _grid_noise(config), augment, interpolate)
    if resume is not None:
        state = load_state(run.ckpt_dir / "last.ckpt", run.cells)
        run.step, run.noise_fixed = state["step"], state["fixed_noise"]
        if run.step >= total_steps:
            done_epochs = -(-run.step // steps_per_epoch)
            limit = f"--max_steps {config.max_steps}" if config.max_steps and config.max_steps <= run.step \
                else f"--epochs {config.epochs}"
            raise ValueError(f"{limit}: {run_dir} is already at step {run.step} (epoch {done_epochs}); "
                             f"nothing to do. To continue it, give --epochs {done_epochs + 1} or more")
        if talk:
            print(f"resuming {run_dir} from step {run.step} (epoch {run.step // steps_per_epoch + 1}, step "
                  f"{run.step % steps_per_epoch} of {steps_per_epoch}) to epoch {config.epochs}"
                  + (f", at most step {config.max_steps}" if config.max_steps else ""), flush=True)
    if workers.main:
        write_config(run_dir, config.asdict(), device)
    return run, data, labels


def _grid_noise(config: TrainConfig) -> np.ndarray:
    """The fixed noise of the sample grids: `config.num_samples` vectors, or for a conditional
    run one row of `config.grid_rows` repeated for every class row (`config.grid_labels`)."""
    if config.grid_labels is None:
        return fixed_noise(config.seed, config.latent_size, config.num_samples, config.noise)
    row = fixed_noise(config.seed, config.latent_size, config.grid_rows, config.noise)
    return np.tile(row, (len(config.grid_labels) // config.grid_rows, 1))


class CompiledSteps:
    """`steps(rows, first_step)`: the GAN steps first_step+1 ... on the batches `rows`
    int `[k, B]` (global rows), as one compiled call; returns float32 `[k, 4]` (loss_d,
    loss_g, D(x), D(G(z)) of each step). The step for each k is compiled when first needed.
    Every worker draws the global batch's rows and noise, as one process does, and passes
    its own slice."""

    def __init__(self, run: Run, data: np.ndarray, device: str, labels: np.ndarray | None = None):
        self.run, self.fns = run, {}
        # The whole set lives on the device as uint8 (a quarter of float32's memory); a step
        # gathers its batch and scales it to [-1, 1] there. So do the labels of a conditional run.
        self.dataset = ms.Tensor(data)
        self.labels = [] if labels is None else [ms.Tensor(labels)]
        self.sync = HostSync(enabled=device == "CPU")

    def __call__(self, rows: np.ndarray, first_step: int) -> np.ndarray:
        r, c, k = self.run, self.run.config, len(rows)
        lazy = r1_steps(first_step, k, c.r1_every)  # which steps carry lazy R1 (None: all)
        if (k, lazy) not in self.fns:
            self.fns[k, lazy] = make_train_step(r.net_g, r.net_d, r.opt_g, r.opt_d, jit=c.mode == "graph",
                                                steps=k, g_steps=c.g_steps, ema=r.ema,
                                                lr_input=bool(c.lr_decay_from), workers=r.workers.size,
                                                loss=c.spec.loss, update=c.update, augment=r.augment,
                                                penalty=penalty_for(c.spec, r.interpolate, c.r1_every),
                                                penalised=lazy)
        z = steps_noise(c.seed, first_step, k, c.batch_size, c.latent_size, c.noise)
        args = [self.dataset, *self.labels, ms.Tensor(r.workers.local(rows, 1)), ms.Tensor(r.workers.local(z, 1))]
        if c.lr_decay_from:  # a call never straddles an epoch: one rate per call
            args.append(ms.Tensor(c.lr_at(first_step // r.steps_per_epoch), ms.float32))
        return self.sync.fetch(self.fns[k, lazy](*args))


def train(config: TrainConfig, resume: str | Path | None = None, device: str | None = None,
          images: np.ndarray | None = None, progress: bool = True, verbose: bool = False,
          hooks: tuple = (), labels: np.ndarray | None = None) -> Path:
    """Train (or continue) a run; returns its folder.

    `device` is the device already selected by `runtime.setup` (recorded in config.json).
    `images` (uint8 `[N, H, W]` or `[N, C, H, W]`) replaces loading `config.data_dir`, with
    `labels` (int `[N]`, class indices of `config.class_names`, or 0..max) for a
    `config.conditional` run. `hooks`
    (`mindgan.hooks.Hook`s) act after the run's own, on every worker. Raises
    TrainingInterrupted after a Ctrl-C (state saved), TrainingDiverged on a NaN/Inf loss, and
    ValueError (one line, as the command line's) on a config that does not fit the data or the
    resumed run. `config` itself is not changed (it is frozen).

    Under msrun (`parallel.init_workers` done), every worker runs this with the same config:
    each trains on its slice of every global batch, only rank 0 writes the run folder and
    prints (other ranks print only when `verbose`), and all stop at the same step.
    """
    device = device or ms.get_context("device_target")
    talk = parallel.current().main or verbose
    run, data, labels = _start(config, resume, images, labels, device, talk)
    steps = CompiledSteps(run, data, device, labels)
    hooks = run_hooks(run, progress, talk, len(data)) + list(hooks)
    if talk and len(data) < FEW_IMAGES:
        print(f"warning: {len(data)} training images: GANs usually need thousands (below {FEW_IMAGES} the "
              f"discriminator tends to memorise them and the samples stop improving); expect little",
              file=sys.stderr, flush=True)
    try:
        _loop(run, steps, hooks, len(data))
    finally:
        for hook in hooks:
            hook.close()
    return run.run_dir


def _loop(run: Run, steps: CompiledSteps, hooks: list, n_images: int) -> None:
    """Epochs of compiled calls until `run.total_steps`, a NaN, or a stop request."""
    c, per_epoch = run.config, run.steps_per_epoch
    per_call = c.steps_per_call or auto_steps_per_call(per_epoch, run.total_steps)
    if c.update == "simultaneous":  # see gan.make_train_step
        per_call = 1
    stopping = False
    with StopRequest() as stop:
        while run.step < run.total_steps and not stopping:
            epoch, b = divmod(run.step, per_epoch)
            order = batch_indices(n_images, c.batch_size, c.seed, epoch)
            last = min(per_epoch, run.total_steps - epoch * per_epoch)
            for hook in hooks:
                hook.epoch_start(run, epoch, b)
            while b < last and not stopping:
                k = per_call if last - b >= per_call else 1  # the remainder one step at a time
                values = steps(order[b:b + k], run.step)
                bad = np.flatnonzero(~np.all(np.isfinite(values), axis=1))
                if len(bad):
                    raise TrainingDiverged(
                        f"loss became {values[bad[0], 0]:.4g} (D) / {values[bad[0], 1]:.4g} (G) at step "
                        f"{run.step + bad[0] + 1} (epoch {epoch + 1}); stopped. The last good checkpoint "
                        f"in {run.ckpt_dir} is untouched; try a lower --lr or another --seed")
                run.step += k
                b += k
                for hook in hooks:
                    hook.steps(run, epoch, values)
                stopping = run.workers.any(stop.requested)  # all workers stop at the same step
            complete = run.step == (epoch + 1) * per_epoch
            for hook in hooks:
                hook.epoch_end(run, epoch, complete)
            done = stopping or run.step >= run.total_steps
            if done or (complete and (epoch + 1) % c.save_every == 0):
                for hook in hooks:
                    hook.save(run, epoch + 1 if complete else None, final=done)
    if stopping:
        run.workers.barrier()  # msrun kills every worker once one exits non-zero: not mid-save
        raise TrainingInterrupted(run.run_dir, run.step, run.workers.size)
