"""Training the GAN: the compiled step, and the loop that runs it and writes a run folder.

The step (`make_train_step`) is the tutorial's: a discriminator update on
BCE(D(x), 1) + BCE(D(G(z)), 0), then a generator update on the non-saturating BCE(D(G(z)), 1),
each through `mindspore.value_and_grad` and `nn.Adam`, compiled into one graph by
`mindspore.jit`. `train(config)` runs it epoch by epoch and leaves checkpoints, samples, a
loss log and plots in the run folder; an interrupted run continues exactly with `resume`.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np

import mindspore as ms
from mindspore import nn, ops

from . import __version__
from .checkpoint import atomic_save, load_state, save_state
from .data import batch_indices, load_mnist, to_model_range
from .fileio import atomic_output, write_text
from .models import Discriminator, Generator
from .viz import plot_losses, save_gif, save_grid

__all__ = ["TrainConfig", "build_gan", "make_updates", "make_train_step", "auto_steps_per_call",
           "HostSync", "latent_noise", "steps_noise", "train",
           "TrainingDiverged", "TrainingInterrupted", "LOG_COLUMNS"]

LOG_COLUMNS = ("epoch", "step", "loss_d", "loss_g", "d_real", "d_fake")
NUM_SAMPLES = 25  # the tutorial's 5x5 grid


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run; saved as config.json. Defaults are the tutorial's."""
    epochs: int = 200
    batch_size: int = 128
    latent_size: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    data_dir: str | None = None
    subset: int | None = None      # use only the first N training images (quick runs, tests)
    output_dir: str | None = None
    device_target: str = "auto"
    mode: str = "graph"            # "graph": compiled with mindspore.jit; "pynative": eager
    save_every: int = 1            # epochs between checkpoints (and generator snapshots)
    max_steps: int | None = None   # stop after this many steps in total
    log_every: int = 10            # steps between progress-bar updates
    steps_per_call: int = 0        # GAN steps per compiled call; 0: auto_steps_per_call

    # Settings a resumed run may change; everything else must match the saved run.
    RUN_CONTROL = ("epochs", "output_dir", "device_target", "mode", "save_every", "max_steps",
                   "log_every", "data_dir", "steps_per_call")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is left as it was."""


class TrainingInterrupted(Exception):
    """Stopped by SIGINT after saving the resume state; `.resume_command` continues it."""

    def __init__(self, run_dir: Path, step: int):
        self.run_dir, self.step = run_dir, step
        self.resume_command = f"python -m mindgan.train --resume {run_dir}"
        super().__init__(f"interrupted at step {step}; state saved. Resume with: "
                         f"{self.resume_command}")


# ----------------------------------------------------------------------------- the step

def build_gan(config: TrainConfig):
    """Generator, Discriminator and their Adam optimizers, initialised from `config.seed`.

    Returns (net_g, net_d, opt_g, opt_d). The optimizers' own state (step counter, beta
    powers, moments) is prefixed "optim_g." / "optim_d." so that every Parameter name in
    the compiled graph is unique.
    """
    ms.set_seed(config.seed)
    net_g, net_d = Generator(config.latent_size), Discriminator()
    optimizers = []
    for net, prefix in ((net_g, "optim_g."), (net_d, "optim_d.")):
        opt = nn.Adam(net.trainable_params(), learning_rate=config.lr,
                      beta1=config.beta1, beta2=config.beta2)
        # Not opt.update_parameters_name: that would rename the network's weights too.
        own = {id(p) for p in net.get_parameters()}
        for p in opt.get_parameters():
            if id(p) not in own:
                p.name = prefix + p.name
        optimizers.append(opt)
    net_g.set_train(True)
    net_d.set_train(True)
    return net_g, net_d, optimizers[0], optimizers[1]


def make_updates(net_g, net_d, opt_g, opt_d):
    """The two phases of a step, uncompiled: (d_update, g_update).

    `d_update(real, z)` takes one Adam step on the discriminator with
    BCE(D(x), 1) + BCE(D(G(z)), 0) and returns (loss_d, mean D(x), mean D(G(z)));
    `g_update(z)` takes one on the generator with the non-saturating BCE(D(G(z)), 1) and
    returns loss_g. real float32 `[B, 1, 28, 28]` in [-1, 1], z float32 `[B, latent]`.
    """
    bce = nn.BCELoss(reduction="mean")

    def d_forward(real, z):
        d_real = net_d(real)
        d_fake = net_d(net_g(z))
        loss = bce(d_real, ops.ones_like(d_real)) + bce(d_fake, ops.zeros_like(d_fake))
        return loss, d_real.mean(), d_fake.mean()

    def g_forward(z):
        d_fake = net_d(net_g(z))
        return bce(d_fake, ops.ones_like(d_fake))  # non-saturating: G wants D(G(z)) -> 1

    # Gradients only for the parameters this phase's optimizer owns.
    d_grad = ms.value_and_grad(d_forward, None, opt_d.parameters, has_aux=True)
    g_grad = ms.value_and_grad(g_forward, None, opt_g.parameters)

    def d_update(real, z):
        (loss_d, d_real, d_fake), grads = d_grad(real, z)
        opt_d(grads)
        return loss_d, d_real, d_fake

    def g_update(z):
        loss_g, grads = g_grad(z)
        opt_g(grads)
        return loss_g

    return d_update, g_update


def make_train_step(net_g, net_d, opt_g, opt_d, jit: bool = True, steps: int | None = None):
    """One GAN step: update D, then G, on the same noise; one compiled graph when `jit`.

    `step(images, idx, z)`: images float32 `[N, 1, 28, 28]` in [-1, 1] (the whole training
    set, resident on the device), idx int32 `[B]` (this batch's rows), z float32 `[B, latent]`.
    Returns float32 `[4]`: loss_d, loss_g, mean D(x), mean D(G(z)) (before the D update).

    With `steps` = k the function runs k steps in a row, unrolled in one graph: idx `[k, B]`,
    z `[k, B, latent]` -> `[k, 4]`. Same updates in the same order, but one launch and one host
    sync for all of them, at the price of a longer compile.
    """
    d_update, g_update = make_updates(net_g, net_d, opt_g, opt_d)

    def step(images, idx, z):
        real = ops.gather(images, idx, 0)  # batch gathered on the device: no host copy
        loss_d, d_real, d_fake = d_update(real, z)
        loss_g = g_update(z)
        return ops.stack([loss_d, loss_g, d_real, d_fake])

    def several_steps(images, idx, z):
        results = []
        for k in range(steps):
            results.append(step(images, idx[k], z[k]))
        return ops.stack(results)

    fn = step if steps is None else several_steps
    return ms.jit(fn) if jit else fn


def auto_steps_per_call(steps_per_epoch: int, total_steps: int, most: int = 12,
                        min_total: int = 2000) -> int:
    """Steps per compiled call for a run: the largest divisor of `steps_per_epoch` up to `most`
    (so calls never straddle an epoch; 12 for the tutorial's 468), or 1 for runs shorter than
    `min_total` steps, where the longer compile (about 0.8 s a step) would not pay back."""
    if total_steps < min_total:
        return 1
    return max(k for k in range(1, most + 1) if steps_per_epoch % k == 0)


class HostSync:
    """Fetch a step's result without busy-waiting for it.

    MindSpore's wait for a result (`Tensor.asnumpy` -> `Pipeline::WaitAll`) spins on a CPU
    core. With a CPU target on a small machine that spinning thread competes with the threads
    running the kernels: on 2 cores it made steps 2-3x slower and erratic (median 110 ms,
    p10 45 ms). So, on CPU, the host sleeps for about the time the step still needs before
    it asks, learned online: a proportional controller aiming at ~2 ms of residual spin.
    On an accelerator the spin costs the kernels nothing and `fetch` just syncs.
    """

    GAIN, TARGET, MAX, BACKOFF = 0.1, 0.002, 1.0, 0.9

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.sleep = 0.0

    def fetch(self, result) -> np.ndarray:
        """`result.asnumpy()`, after a learned sleep when enabled."""
        if not self.enabled:
            return result.asnumpy()
        if self.sleep > 0:
            time.sleep(self.sleep)
        start = time.perf_counter()
        value = result.asnumpy()
        spin = time.perf_counter() - start
        if spin < self.TARGET:
            # Ready before we asked: we may have overslept by any amount, so back off
            # geometrically (a slow step must not leave a long sleep behind).
            self.sleep *= self.BACKOFF
        else:
            self.sleep = min(self.MAX, self.sleep + self.GAIN * (spin - self.TARGET))
        return value


def latent_noise(seed: int, step: int, n: int, latent_size: int) -> np.ndarray:
    """z for global step `step`: float32 `[n, latent_size]` ~ N(0, 1).

    A pure function of (seed, step), so a resumed run draws exactly the noise it would have.
    """
    rng = np.random.default_rng([seed, 1, step])
    return rng.standard_normal((n, latent_size), dtype=np.float32)


def steps_noise(seed: int, first_step: int, steps: int, n: int, latent_size: int) -> np.ndarray:
    """z for `steps` consecutive global steps after `first_step`: float32 `[steps, n, latent]`."""
    return np.stack([latent_noise(seed, first_step + j, n, latent_size) for j in range(steps)])


def fixed_noise(seed: int, latent_size: int, n: int = NUM_SAMPLES) -> np.ndarray:
    """The noise behind every epoch's sample grid: float32 `[n, latent_size]`."""
    return np.random.default_rng([seed, 2]).standard_normal((n, latent_size), dtype=np.float32)


def sample(net_g, z: np.ndarray) -> np.ndarray:
    """G(z) with BatchNorm in inference mode: float32 `[N, 1, 28, 28]` in [-1, 1].
    The network is put back in training mode afterwards."""
    net_g.set_train(False)
    try:
        return net_g(ms.Tensor(z)).asnumpy()
    finally:
        net_g.set_train(True)


# ----------------------------------------------------------------------------- the loop

def _versions(device: str) -> dict:
    return {"mindgan": __version__, "mindspore": ms.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "device": device,
            "machine": f"{platform.machine()} {platform.system()}"}


class _StopRequest:
    """Ctrl-C (or SIGTERM) asks the loop to stop after the current call; a second one aborts.

    SIGTERM is handled too because MindSpore's runtime, on every graph launch, installs a
    C++ SIGINT handler that turns Ctrl-C into SIGTERM to the process; a job scheduler's
    SIGTERM should also end in a saved, resumable state.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupt received: finishing the current call's steps and saving "
              "(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def _read_log(path: Path, upto_step: int) -> list[dict]:
    """losses.csv rows with step <= upto_step (later rows belong to a lost, unsaved stretch;
    a last line cut short by a crash during an append is dropped too). Raises ValueError
    naming the line when the file is not such a log."""
    if not path.is_file():
        return []
    with open(path, newline="", errors="replace") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != LOG_COLUMNS:
            raise ValueError(f"header {reader.fieldnames} is not {list(LOG_COLUMNS)}")
        rows = list(reader)
    kept = []
    for i, row in enumerate(rows):
        try:
            step = int(row["step"])
            [float(row[c]) for c in LOG_COLUMNS[2:]]
        except (TypeError, ValueError):
            if i == len(rows) - 1:
                break  # cut short mid-append
            raise ValueError(f"line {i + 2} is not a log row") from None
        if step <= upto_step:
            kept.append(row)
    return kept


def _write_log(path: Path, rows: list[dict]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _append_log(path: Path, rows: list[dict]) -> None:
    """Append rows: rewriting the whole log each epoch grew to 0.2 s late in a long run."""
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, LOG_COLUMNS).writerows(rows)


def new_run_dir(root: str | Path = "runs") -> Path:
    """A fresh timestamped folder under `root` (never an existing one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = Path(root) / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder under {root}")


def train(config: TrainConfig, resume: str | Path | None = None, device: str | None = None,
          images: np.ndarray | None = None, progress: bool = True) -> Path:
    """Train (or continue) a run; returns its folder.

    `device` is the device already selected by `runtime.setup` (recorded in config.json).
    `images` (uint8 `[N, 28, 28]`) replaces loading MNIST, for callers that hold it already.
    Raises TrainingInterrupted after a Ctrl-C (state saved) and TrainingDiverged on a NaN/Inf.
    """
    from tqdm.auto import tqdm

    device = device or ms.get_context("device_target")
    if resume is not None:
        run_dir = Path(resume)
    elif config.output_dir:
        run_dir = Path(config.output_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(f"--output_dir {run_dir} exists and is not empty; use "
                                  f"--resume {run_dir} to continue that run, or another folder")
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = new_run_dir()
    config.output_dir = str(run_dir)
    ckpt_dir, sample_dir = run_dir / "checkpoints", run_dir / "samples"

    if images is None:
        images = load_mnist("train", config.data_dir)[0]
    if config.subset:
        images = images[: config.subset]
    steps_per_epoch = len(images) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch size {config.batch_size} is larger than the dataset "
                         f"({len(images)} images)")
    # The whole training set lives on the device as one tensor; a step gathers its batch.
    dataset = ms.Tensor(to_model_range(images))

    net_g, net_d, opt_g, opt_d = build_gan(config)
    cells = [net_g, net_d, opt_g, opt_d]
    step = 0
    noise_fixed = fixed_noise(config.seed, config.latent_size)
    if resume is not None:
        state = load_state(ckpt_dir / "last.ckpt", cells)
        step, noise_fixed = state["step"], state["fixed_noise"]
    try:
        log_rows = _read_log(run_dir / "losses.csv", step)
    except ValueError as e:  # keep the unreadable file; the checkpoints do not depend on it
        kept = run_dir / "losses.csv.unreadable"
        (run_dir / "losses.csv").replace(kept)
        print(f"warning: {run_dir / 'losses.csv'}: {e}; kept as {kept.name}, starting a new log",
              file=sys.stderr)
        log_rows = []
    _write_log(run_dir / "losses.csv", log_rows)  # drops rows of an unsaved stretch
    logged = len(log_rows)
    record = {**dataclasses.asdict(config), "versions": _versions(device)}
    write_text(run_dir / "config.json", json.dumps(record, indent=2) + "\n")

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
            step_fns[k] = make_train_step(net_g, net_d, opt_g, opt_d,
                                          jit=config.mode == "graph", steps=k)
        z = steps_noise(config.seed, first_step, k, config.batch_size, config.latent_size)
        return sync.fetch(step_fns[k](dataset, ms.Tensor(order_rows), ms.Tensor(z)))

    def save(step_now: int, epoch_done: int | None, final: bool) -> None:
        """Everything on disk consistent with `step_now`: log, plots, checkpoints. The GIF
        only when the run stops: re-encoding every frame each epoch grew to seconds."""
        nonlocal logged
        _append_log(run_dir / "losses.csv", log_rows[logged:])
        logged = len(log_rows)
        if log_rows:
            plot_losses([int(r["step"]) for r in log_rows], [float(r["loss_d"]) for r in log_rows],
                        [float(r["loss_g"]) for r in log_rows], run_dir / "loss_curve.png",
                        steps_per_epoch)
        frames = sorted(sample_dir.glob("epoch_*.png"))
        if final and frames:
            save_gif(frames, run_dir / "training.gif")
        atomic_save(net_g, ckpt_dir / "generator.ckpt")
        atomic_save(net_d, ckpt_dir / "discriminator.ckpt")
        if epoch_done is not None:  # the tutorial's Generator{epoch}.ckpt, every save_every
            atomic_save(net_g, ckpt_dir / f"generator_epoch_{epoch_done:03d}.ckpt")
        save_state(ckpt_dir / "last.ckpt", cells, step_now, noise_fixed, dataclasses.asdict(config))

    with _StopRequest() as stop:
        while step < total_steps:
            epoch, first = divmod(step, steps_per_epoch)
            order = batch_indices(len(images), config.batch_size, config.seed, epoch)
            last = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
            sums, count, start = np.zeros(4), 0, time.perf_counter()
            bar = tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{config.epochs}",
                       unit="step", leave=False, disable=not progress, dynamic_ncols=True)
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
                    log_rows.append(dict(zip(LOG_COLUMNS, [epoch + 1, step, *(f"{v:.6f}" for v in values)])))
                    if count % config.log_every == 0:
                        rate = count * config.batch_size / (time.perf_counter() - start)
                        bar.set_postfix(loss_d=f"{values[0]:.3f}", loss_g=f"{values[1]:.3f}",
                                        img_s=f"{rate:.0f}")
                bar.update(k)
                b += k
                if stop.requested:
                    break
            bar.close()
            seconds = time.perf_counter() - start
            epoch_complete = step == (epoch + 1) * steps_per_epoch
            save_grid(sample(net_g, noise_fixed), sample_dir / f"epoch_{epoch + 1:03d}.png", nrow=5)
            if count:
                mean = sums / count
                print(f"epoch {epoch + 1:3d}/{config.epochs}  step {step:6d}  loss_d {mean[0]:.4f}  "
                      f"loss_g {mean[1]:.4f}  D(x) {mean[2]:.3f}  D(G(z)) {mean[3]:.3f}  "
                      f"{seconds:.1f} s" + ("" if epoch_complete else "  (partial epoch)"),
                      flush=True)
            done = stop.requested or step >= total_steps
            if done or (epoch_complete and (epoch + 1) % config.save_every == 0):
                save(step, epoch + 1 if epoch_complete else None, final=done)
            if stop.requested:
                raise TrainingInterrupted(run_dir, step)
    return run_dir
