"""What a training run does around its steps, one small object each: progress, the loss log,
sample grids, checkpoints, the quick FID with its best generator, and the averaged generator's
view. `training.train` calls every hook at the same four points; a new per-epoch artefact is a
new hook, not an edit of the loop.

The points, in order:
- `epoch_start(run, epoch, first)`: epoch `epoch` (0-based) begins at its step `first`;
- `steps(run, epoch, values)`: a compiled call just ran `len(values)` steps, `run.step` is
  the global step after them, values float32 `[k, 4]`: loss_d, loss_g, D(x), D(G(z));
- `epoch_end(run, epoch, complete)`: the epoch's calls are done (`complete`: all its steps);
- `save(run, epoch_done, final)`: make the run folder consistent with `run.step`
  (`epoch_done`: the epoch just completed, None mid-epoch; `final`: the run stops now).
`close()` always runs at the end, also after an error.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .checkpoint import atomic_save, save_generator, save_state
from .progress import Bar
from .rundir import MetricsLog, RunLog
from .viz import save_grid

__all__ = ["Hook", "Progress", "DiscriminatorWins", "LossLog", "AveragedView", "SampleGrids", "QualityCheck",
           "Checkpoints", "run_hooks"]


class Hook:
    """Does nothing at every point; subclasses override what they need."""

    def epoch_start(self, run, epoch: int, first: int) -> None:
        pass

    def steps(self, run, epoch: int, values: np.ndarray) -> None:
        pass

    def epoch_end(self, run, epoch: int, complete: bool) -> None:
        pass

    def save(self, run, epoch_done: int | None, final: bool) -> None:
        pass

    def close(self) -> None:
        pass


class Progress(Hook):
    """The progress bar of each epoch (`bar`: --no_progress turns it off) and the epoch's
    summary line: mean losses, D's outputs, seconds."""

    def __init__(self, bar: bool = True):
        self.show_bar, self.bar = bar, None

    def epoch_start(self, run, epoch, first):
        c = run.config
        self.sums, self.count, self.start = np.zeros(4), 0, time.perf_counter()
        self.bar = Bar(run.steps_per_epoch, f"epoch {epoch + 1}/{c.epochs}", self.show_bar, "step", first)

    def steps(self, run, epoch, values):
        k = len(values)
        self.sums += values.sum(0)
        self.count += k
        rate = self.count * run.config.batch_size / (time.perf_counter() - self.start)
        every, last = run.config.log_every, values[-1]
        self.bar.update(k, {"loss_d": f"{last[0]:.3f}", "loss_g": f"{last[1]:.3f}", "img/s": f"{rate:.0f}"},
                        redraw=self.count // every > (self.count - k) // every)

    def epoch_end(self, run, epoch, complete):
        self.close()
        if not self.count:
            return
        c, mean = run.config, self.sums / self.count
        print(f"epoch {epoch + 1:3d}/{c.epochs}  step {run.step:6d}  loss_d {mean[0]:.4f}  "
              f"loss_g {mean[1]:.4f}  D(x) {mean[2]:.3f}  D(G(z)) {mean[3]:.3f}  "
              f"{time.perf_counter() - self.start:.1f} s"
              + (f"  lr {c.lr_at(epoch):.3g}" if c.lr_decay_from else "")
              + ("" if complete else "  (partial epoch)"), flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class DiscriminatorWins(Hook):
    """A warning (stderr, once) when D(G(z)) has stayed below `floor` for `patience` steps: D
    then rejects every generated image with certainty, the generator's BCE loss saturates
    (27.63 = -ln 1e-12, nn.BCELoss's clamp) and G learns nothing; samples stay as they are."""

    def __init__(self, n_images: int, floor: float = 1e-3, patience: int = 50):
        self.n_images, self.floor, self.patience = n_images, floor, patience
        self.since, self.warned = None, False

    def steps(self, run, epoch, values):
        first = run.step - len(values) + 1
        for j, d_fake in enumerate(values[:, 3]):
            if d_fake >= self.floor:
                self.since = None
            elif self.since is None:
                self.since = first + j
        if self.since is not None and not self.warned and run.step - self.since + 1 >= self.patience:
            self.warned = True
            print(f"warning: D(G(z)) has been below {self.floor:g} since step {self.since} "
                  f"({run.step - self.since + 1} steps): the discriminator rejects every generated image "
                  f"and the generator gets no gradient. Likely causes: too few images ({self.n_images} "
                  f"here; GANs want thousands) or a discriminator too strong for them; try more images, "
                  f"a smaller --ndf or a lower --lr", file=sys.stderr, flush=True)


class LossLog(Hook):
    """losses.csv (a row per step) and loss_curve.png at every save; training.gif of the
    sample grids when the run stops."""

    def __init__(self, run):
        self.log = RunLog(run.run_dir, run.step)

    def steps(self, run, epoch, values):
        first = run.step - len(values)
        for j, row in enumerate(values):
            self.log.add(epoch + 1, first + j + 1, row)

    def save(self, run, epoch_done, final):
        self.log.flush(run.steps_per_epoch)
        if final:
            self.log.write_gif()


class AveragedView(Hook):
    """With --ema: loads the average into `run.shown` at each epoch's end, before the hooks
    after it sample, measure or save the generator."""

    def epoch_end(self, run, epoch, complete):
        run.ema.copy_to(run.shown)


class SampleGrids(Hook):
    """samples/epoch_XXX.png: the shown generator on the fixed noise after every
    `config.grid_interval`-th epoch, the last one and any cut short (a stop)."""

    def epoch_end(self, run, epoch, complete):
        from .gan import sample

        last = run.step >= run.total_steps
        if complete and not last and (epoch + 1) % run.config.grid_interval:
            return
        # a conditional run's grid: one row per class (config.grid_labels), the noise down each column
        save_grid(sample(run.shown, run.noise_fixed, run.config.grid_labels),
                  run.run_dir / "samples" / f"epoch_{epoch + 1:03d}.png", nrow=run.config.grid_rows)


class QualityCheck(Hook):
    """Every `--eval_every` complete epochs: the quick classifier FID (`evaluate.QuickFID`)
    in metrics.csv / metrics.png, and checkpoints/generator_best.ckpt when it is the lowest."""

    def __init__(self, run):
        from .evaluate import QuickFID

        self.quality = QuickFID(run.config.eval_samples, seed=run.config.seed)
        self.metrics = MetricsLog(run.run_dir, run.step)

    def epoch_end(self, run, epoch, complete):
        if not complete or (epoch + 1) % run.config.eval_every:
            return
        best, start = self.metrics.best, time.perf_counter()
        result = self.quality(run.shown)
        self.metrics.add(epoch + 1, run.step, result, time.perf_counter() - start)
        if result["fid"] < best:
            save_generator(run.shown, run.ckpt_dir / "generator_best.ckpt")
        print(f"quality at epoch {epoch + 1}: FID {result['fid']:.2f} (best "
              f"{min(best, result['fid']):.2f}), {result['classes_present']}/10 digits, "
              f"{time.perf_counter() - start:.1f} s", flush=True)


class Checkpoints(Hook):
    """checkpoints/: generator.ckpt (the shown generator), generator_raw.ckpt (with --ema),
    discriminator.ckpt, last.ckpt (the resume state), and a generator_epoch_XXX.ckpt snapshot
    every `config.snapshot_interval` epochs and at the end."""

    def save(self, run, epoch_done, final):
        d = run.ckpt_dir
        save_generator(run.shown, d / "generator.ckpt")
        if run.ema is not None:  # the raw weights stay available
            save_generator(run.net_g, d / "generator_raw.ckpt")
        atomic_save(run.net_d, d / "discriminator.ckpt")
        # The tutorial's Generator{epoch}.ckpt, sparser for long runs.
        if epoch_done is not None and (final or epoch_done % run.config.snapshot_interval == 0):
            save_generator(run.shown, d / f"generator_epoch_{epoch_done:03d}.ckpt")
        save_state(d / "last.ckpt", run.cells, run.step, run.noise_fixed, run.config.asdict(),
                   run.config.spec)


def run_hooks(run, progress: bool, talk: bool, n_images: int) -> list[Hook]:
    """The hooks of a run, in the order they act. `talk`: this worker prints (rank 0, or any
    with --verbose); only the master process (`run.master`, rank 0) writes the run folder."""
    hooks: list[Hook] = [Progress(bar=progress), DiscriminatorWins(n_images)] if talk else []
    if run.master:
        if run.ema is not None:
            hooks.append(AveragedView())
        hooks.append(SampleGrids())
        if run.config.eval_every and _quality_applies(run):
            hooks.append(QualityCheck(run))
        hooks += [LossLog(run), Checkpoints()]
    return hooks


def _quality_applies(run) -> bool:
    from .classifier import IMAGE_SHAPE

    if run.config.spec.image_shape == IMAGE_SHAPE:
        return True
    print(f"note: --eval_every skipped: its FID is MNIST-only ({'x'.join(map(str, IMAGE_SHAPE))}), this run "
          f"makes {'x'.join(map(str, run.config.spec.image_shape))} images", flush=True)
    return False

