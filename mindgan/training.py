"""The training loop: `train(config)` runs the compiled GAN step (`mindgan.gan`) epoch by epoch
and leaves checkpoints, samples, a loss log and plots in the run folder (`mindgan.rundir`);
an interrupted run continues exactly with `resume`.

This is the library; `python -m mindgan.train` (module `train`) is its command line.
"""
from __future__ import annotations

import time
from pathlib import Path

import mindspore as ms
import numpy as np

from . import parallel
from .checkpoint import atomic_save, load_state, save_generator, save_state
from .config import TrainConfig
from .data import batch_indices
from .gan import GeneratorEMA, auto_steps_per_call, build_gan, fixed_noise, make_train_step, sample, steps_noise
from .models import build_generator
from .rundir import LOG_COLUMNS, MetricsLog, RunLog, prepare_run_dir, write_config
from .runtime import HostSync, StopRequest
from .viz import save_grid

__all__ = ["TrainConfig", "train", "TrainingDiverged", "TrainingInterrupted", "LOG_COLUMNS"]


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


def _training_images(config: TrainConfig, images: np.ndarray | None) -> np.ndarray:
    """The training set as uint8 `[N, C, H, W]`, checked against the model."""
    if images is None:
        from .data import load_training_images
        images = load_training_images(config)
    if config.subset:
        images = images[: config.subset]
    x = images if images.ndim == 4 else images[:, None]
    if config.channels is None:
        config.channels = x.shape[1]
    if x.shape[1:] != config.spec.image_shape:
        c, h, w = config.spec.image_shape
        raise ValueError(f"the data's images are {'x'.join(map(str, x.shape[1:]))} but --model "
                         f"{config.model} is set to make {c}x{h}x{w} (--channels, --image_size)")
    if x.dtype != np.uint8:
        raise ValueError(f"training images must be uint8 in 0..255, not {x.dtype}")
    return x


class _Progress:
    """Progress within an epoch: a tqdm bar on a terminal; where stderr is a file or a CI log
    (a bar there is one endless line of carriage returns), a plain line every tenth of the
    epoch; nothing when disabled."""

    def __init__(self, enabled: bool, total: int, initial: int, desc: str):
        import sys

        from tqdm.auto import tqdm

        self.bar, self.lines = None, enabled and not sys.stderr.isatty()
        self.total, self.done, self.desc, self.every = total, initial, desc, max(1, total // 10)
        self.next_line = initial + self.every
        if enabled and not self.lines:
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", leave=False,
                            dynamic_ncols=True)

    def update(self, k: int, values, rate: float, refresh: bool) -> None:
        """k more steps done; `values` (loss_d, loss_g, ...) and `rate` (images/s) are the
        latest; the bar redraws its figures only when `refresh` (every --log_every steps)."""
        self.done += k
        if self.bar is not None:
            if refresh:
                self.bar.set_postfix(loss_d=f"{values[0]:.3f}", loss_g=f"{values[1]:.3f}",
                                     img_s=f"{rate:.0f}")
            self.bar.update(k)
        elif self.lines and self.done >= self.next_line and self.done < self.total:
            import sys

            print(f"  {self.desc}  step {self.done}/{self.total}  loss_d {values[0]:.3f}  "
                  f"loss_g {values[1]:.3f}  {rate:.0f} img/s", file=sys.stderr, flush=True)
            self.next_line += self.every

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(config: TrainConfig, resume: str | Path | None = None, device: str | None = None,
          images: np.ndarray | None = None, progress: bool = True, verbose: bool = False) -> Path:
    """Train (or continue) a run; returns its folder.

    `device` is the device already selected by `runtime.setup` (recorded in config.json).
    `images` (uint8 `[N, H, W]` or `[N, C, H, W]`) replaces loading `config.data_dir`. Raises
    TrainingInterrupted after a Ctrl-C (state saved), TrainingDiverged on a NaN/Inf loss.

    Under msrun (`parallel.init_workers` done), every worker runs this with the same config:
    each trains on its slice of every global batch, only rank 0 writes the run folder and
    prints (other ranks print only when `verbose`), and all stop at the same step.
    """
    device = device or ms.get_context("device_target")
    workers = parallel.current()
    main, talk = workers.main, workers.main or verbose
    workers.batch_size(config.batch_size)  # ValueError unless the global batch splits evenly
    if main:
        run_dir = prepare_run_dir(config.output_dir, resume)
    else:  # rank 0 creates (and names) the folder; the others only read its last.ckpt
        run_dir = Path(resume if resume is not None else config.output_dir or "runs")
    config.output_dir = str(run_dir)
    ckpt_dir, sample_dir = run_dir / "checkpoints", run_dir / "samples"

    data = _training_images(config, images)
    steps_per_epoch = len(data) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch size {config.batch_size} is larger than the dataset "
                         f"({len(data)} images)")
    # The whole set lives on the device as uint8 (a quarter of float32's memory); a step gathers
    # its batch and scales it to [-1, 1] there.
    dataset = ms.Tensor(data)

    net_g, net_d, opt_g, opt_d = build_gan(config)
    parallel.shard(net_g, workers)
    parallel.shard(net_d, workers)
    cells = [net_g, net_d, opt_g, opt_d]
    ema, shown = None, net_g  # `shown`: the generator that samples and is saved as generator.ckpt
    if config.ema:
        ema = GeneratorEMA(net_g, config.ema)
        shown = build_generator(config.spec)
        cells.append(ema)
    step = 0
    noise_fixed = fixed_noise(config.seed, config.latent_size, config.num_samples, config.noise)
    if resume is not None:
        state = load_state(ckpt_dir / "last.ckpt", cells)
        step, noise_fixed = state["step"], state["fixed_noise"]
        if talk:
            print(f"resuming {run_dir} from step {step} (epoch {step // steps_per_epoch + 1}, step "
                  f"{step % steps_per_epoch} of {steps_per_epoch}) to epoch {config.epochs}"
                  + (f", at most step {config.max_steps}" if config.max_steps else ""), flush=True)
    log = RunLog(run_dir, step) if main else None
    if main:
        write_config(run_dir, config.asdict(), device)
    quality = metrics = None  # rank 0 alone measures and keeps the best generator
    if main and config.eval_every and config.spec.image_shape != (1, 28, 28):
        print(f"note: --eval_every skipped: its FID is MNIST-only (1x28x28), this run makes "
              f"{'x'.join(map(str, config.spec.image_shape))} images", flush=True)
    elif main and config.eval_every:
        from .evaluate import QuickFID
        quality = QuickFID(config.eval_samples, seed=config.seed)
        metrics = MetricsLog(run_dir, step)

    sync = HostSync(enabled=device == "CPU")
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    per_call = config.steps_per_call or auto_steps_per_call(steps_per_epoch, total_steps)
    step_fns = {}  # steps per call -> compiled step, built when first needed

    def run_steps(order_rows: np.ndarray, first_step: int) -> np.ndarray:
        """Steps first_step+1 ... on the batches `order_rows` `[k, B]`: values `[k, 4]`."""
        k = len(order_rows)
        if k not in step_fns:
            step_fns[k] = make_train_step(net_g, net_d, opt_g, opt_d, jit=config.mode == "graph",
                                          steps=k, g_steps=config.g_steps, ema=ema,
                                          lr_input=bool(config.lr_decay_from),
                                          workers=workers.size)
        # Every worker draws the global batch's rows and noise, as one process does, and
        # takes its own slice.
        z = steps_noise(config.seed, first_step, k, config.batch_size, config.latent_size,
                        config.noise)
        args = [dataset, ms.Tensor(workers.local(order_rows, 1)), ms.Tensor(workers.local(z, 1))]
        if config.lr_decay_from:  # a call never straddles an epoch: one rate per call
            args.append(ms.Tensor(config.lr_at(first_step // steps_per_epoch), ms.float32))
        return sync.fetch(step_fns[k](*args))

    def save(step_now: int, epoch_done: int | None, final: bool) -> None:
        """Everything on disk consistent with `step_now`: log, plots, checkpoints (rank 0)."""
        if not main:
            return
        log.flush(steps_per_epoch)
        if final:
            log.write_gif()
        save_generator(shown, ckpt_dir / "generator.ckpt")
        if ema is not None:  # the raw weights stay available
            save_generator(net_g, ckpt_dir / "generator_raw.ckpt")
        atomic_save(net_d, ckpt_dir / "discriminator.ckpt")
        if epoch_done is not None:  # the tutorial's Generator{epoch}.ckpt, every save_every
            save_generator(shown, ckpt_dir / f"generator_epoch_{epoch_done:03d}.ckpt")
        save_state(ckpt_dir / "last.ckpt", cells, step_now, noise_fixed, config.asdict(), config.spec)

    stopping = False
    with StopRequest() as stop:
        while step < total_steps:
            epoch, first = divmod(step, steps_per_epoch)
            order = batch_indices(len(data), config.batch_size, config.seed, epoch)
            last = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
            sums, count, start = np.zeros(4), 0, time.perf_counter()
            bar = _Progress(progress and talk, steps_per_epoch, first, f"epoch {epoch + 1}/{config.epochs}")
            b = first
            while b < last:
                k = per_call if last - b >= per_call else 1  # the remainder one step at a time
                for values in run_steps(order[b:b + k], step):
                    if not np.all(np.isfinite(values)):
                        bar.close()
                        raise TrainingDiverged(
                            f"loss became {values[0]:.4g} (D) / {values[1]:.4g} (G) at step {step + 1} "
                            f"(epoch {epoch + 1}); stopped. The last good checkpoint in {ckpt_dir} is "
                            f"untouched; try a lower --lr or another --seed")
                    step += 1
                    sums += values
                    count += 1
                    if log is not None:
                        log.add(epoch + 1, step, values)
                rate = count * config.batch_size / (time.perf_counter() - start)
                bar.update(k, values, rate, count // config.log_every > (count - k) // config.log_every)
                b += k
                stopping = workers.any(stop.requested)  # all workers stop at the same step
                if stopping:
                    break
            bar.close()
            seconds = time.perf_counter() - start
            epoch_complete = step == (epoch + 1) * steps_per_epoch
            if main:  # the other workers neither sample nor save: no copy of the average
                if ema is not None:
                    ema.copy_to(shown)
                save_grid(sample(shown, noise_fixed), sample_dir / f"epoch_{epoch + 1:03d}.png",
                          nrow=config.grid_rows)
            if count and talk:
                mean = sums / count
                print(f"epoch {epoch + 1:3d}/{config.epochs}  step {step:6d}  loss_d {mean[0]:.4f}  "
                      f"loss_g {mean[1]:.4f}  D(x) {mean[2]:.3f}  D(G(z)) {mean[3]:.3f}  "
                      f"{seconds:.1f} s" + (f"  lr {config.lr_at(epoch):.3g}" if config.lr_decay_from else "")
                      + ("" if epoch_complete else "  (partial epoch)"),
                      flush=True)
            if quality is not None and epoch_complete and (epoch + 1) % config.eval_every == 0:
                best, start = metrics.best, time.perf_counter()
                result = quality(shown)
                metrics.add(epoch + 1, step, result, time.perf_counter() - start)
                if result["fid"] < best:
                    save_generator(shown, ckpt_dir / "generator_best.ckpt")
                print(f"quality at epoch {epoch + 1}: FID {result['fid']:.2f} (best "
                      f"{min(best, result['fid']):.2f}), {result['classes_present']}/10 digits, "
                      f"{time.perf_counter() - start:.1f} s", flush=True)
            done = stopping or step >= total_steps
            if done or (epoch_complete and (epoch + 1) % config.save_every == 0):
                save(step, epoch + 1 if epoch_complete else None, final=done)
            if stopping:
                workers.barrier()  # msrun kills every worker once one exits non-zero: not mid-save
                raise TrainingInterrupted(run_dir, step, workers.size)
    return run_dir
