"""Benchmark: one GAN training step (D update, then G update), and a full epoch.

    python benchmarks/train_step.py [--device_target CPU] [--batch_size 128] [--steps 200]

Times mindgan's compiled step as `train()` runs it (several steps unrolled in one call; the
one-step call too, for comparison; warm-up excluded, median and mean over --steps), the graph
compile time, a full epoch through `mindgan.training.train` (data, logging, sampling, checkpoints
included) and peak host memory. If PyTorch is importable, the same networks and updates run
eagerly in the same process and the table shows the ratio. A benchmark, not a test: the
numbers depend on the machine and on what else it is doing.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("GLOG_v", "3")


def time_steps(run_step, steps: int, warmup: int) -> tuple[float, list[float]]:
    """(first-call seconds, per-step seconds after `warmup` more calls)."""
    start = time.perf_counter()
    run_step(0)
    first = time.perf_counter() - start
    for i in range(warmup):
        run_step(1 + i)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        run_step(1 + warmup + i)
        times.append(time.perf_counter() - start)
    return first, times


def bench_mindgan(images, batch_size, steps, warmup, device, patient=True, per_call=1):
    """Compiled training steps, `per_call` of them in one call as `train()` runs them:
    (first call's seconds, seconds per step of each timed call)."""
    import mindspore as ms

    from mindgan.data import batch_indices, to_model_range
    from mindgan.config import TrainConfig
    from mindgan.gan import build_gan, make_train_step, steps_noise
    from mindgan.runtime import HostSync

    config = TrainConfig(batch_size=batch_size)
    step_fn = make_train_step(*build_gan(config), steps=per_call)
    dataset = ms.Tensor(to_model_range(images))
    order = batch_indices(len(images), batch_size, 0, 0)
    sync = HostSync(enabled=patient and device == "CPU")

    def run(i):
        rows = [(i * per_call + k) % len(order) for k in range(per_call)]
        z = steps_noise(0, i * per_call, per_call, batch_size, config.latent_size)
        sync.fetch(step_fn(dataset, ms.Tensor(order[rows]), ms.Tensor(z)))

    first, times = time_steps(run, max(1, steps // per_call), max(1, warmup // per_call))
    return first, [t / per_call for t in times]


def bench_epoch(images, batch_size, per_call) -> float:
    """Seconds per epoch once warm: a 3-epoch `train()` run, timed between the sample grids
    written at the end of epochs 1 and 3 (so compile and start-up are left out, and the
    steps, logging, sampling, plots and checkpoints of two whole epochs are in)."""
    from mindgan.training import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(epochs=3, batch_size=batch_size, output_dir=os.path.join(tmp, "run"),
                             steps_per_call=per_call)
        run = train(config, images=images, progress=False)
        first, last = (os.path.getmtime(run / "samples" / f"epoch_{e:03d}.png") for e in (1, 3))
        return (last - first) / 2


def bench_torch(images, batch_size, steps, warmup):
    import torch
    from torch import nn

    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(100, 128), nn.ReLU(),
                      nn.Linear(128, 256), nn.BatchNorm1d(256), nn.ReLU(),
                      nn.Linear(256, 512), nn.BatchNorm1d(512), nn.ReLU(),
                      nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
                      nn.Linear(1024, 784), nn.Tanh())
    d = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                      nn.LeakyReLU(0.2), nn.Linear(256, 1), nn.Sigmoid())
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    data = torch.from_numpy(images.reshape(len(images), 784).astype(np.float32) / 127.5 - 1)
    ones, zeros = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)
    rng = np.random.default_rng(0)

    def run(i):
        real = data[torch.from_numpy(rng.integers(0, len(data), batch_size))]
        z = torch.randn(batch_size, 100)
        # The tutorial's D update: G(z) recomputed inside, as mindgan's step does.
        opt_d.zero_grad()
        loss_d = bce(d(real), ones) + bce(d(g(z).detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(d(g(z)), ones)
        loss_g.backward()
        opt_g.step()
        float(loss_d), float(loss_g)

    return time_steps(run, steps, warmup), torch.__version__, torch.get_num_threads()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device_target", default="CPU", choices=("auto", "CPU", "GPU", "Ascend"))
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--steps", type=int, default=200, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps after the first")
    p.add_argument("--steps_per_call", type=int, default=0,
                   help="steps compiled into one call (default 0: what train() picks for a 200-epoch run)")
    p.add_argument("--no_epoch", action="store_true", help="skip the full-epoch timing")
    p.add_argument("--no_torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--compare_sync", action="store_true",
                   help="also time the step with MindSpore's plain (busy-waiting) result fetch")
    args = p.parse_args(argv)

    from mindgan.data import load_mnist
    from mindgan.runtime import setup

    images = load_mnist("train")[0]
    device = setup(args.device_target, "graph")
    rows = []
    if args.compare_sync:
        _, busy = bench_mindgan(images, args.batch_size, args.steps, args.warmup, device, False)
        rows.append(("step, busy-wait sync (before)", f"{statistics.median(busy) * 1e3:.1f} ms",
                     f"p10 {np.percentile(busy, 10) * 1e3:.1f} / p90 {np.percentile(busy, 90) * 1e3:.1f} ms"))
    from mindgan.gan import auto_steps_per_call

    steps_per_epoch = len(images) // args.batch_size
    per_call = args.steps_per_call or auto_steps_per_call(steps_per_epoch, 200 * steps_per_epoch)
    if per_call > 1:  # for comparison: one step per call
        _, single = bench_mindgan(images, args.batch_size, args.steps, args.warmup, device)
        rows.append(("mindgan step, 1 per call (median)", f"{statistics.median(single) * 1e3:.1f} ms",
                     f"mean {statistics.mean(single) * 1e3:.1f}, p10 {np.percentile(single, 10) * 1e3:.1f} / "
                     f"p90 {np.percentile(single, 90) * 1e3:.1f} ms"))
    first, times = bench_mindgan(images, args.batch_size, args.steps, args.warmup, device,
                                 per_call=per_call)
    ms_step, ms_mean = statistics.median(times), statistics.mean(times)
    rows.append((f"mindgan step, {per_call} per call (median)", f"{ms_step * 1e3:.1f} ms",
                 f"mean {ms_mean * 1e3:.1f}, p10 {np.percentile(times, 10) * 1e3:.1f} / "
                 f"p90 {np.percentile(times, 90) * 1e3:.1f} ms (per step; what train() runs)"))
    rows.append(("graph compile + first call", f"{first:.2f} s", f"{per_call} steps unrolled"))
    if not args.no_epoch:
        epoch = bench_epoch(images, args.batch_size, per_call)
        steps_only = steps_per_epoch * ms_mean
        rows.append(("full epoch (train(), warm)", f"{epoch:.1f} s",
                     f"{steps_per_epoch} steps x mean step = {steps_only:.1f} s; overhead "
                     f"(data, logging, samples, plots, checkpoints) {(epoch / steps_only - 1) * 100:+.1f} %"))
    torch_line = None
    if not args.no_torch:
        try:
            (t_first, t_times), t_version, threads = bench_torch(
                images, args.batch_size, args.steps, args.warmup)
            t_step = statistics.median(t_times)
            rows.append((f"PyTorch {t_version} eager step (median)", f"{t_step * 1e3:.1f} ms",
                         f"mean {statistics.mean(t_times) * 1e3:.1f}, p10 {np.percentile(t_times, 10) * 1e3:.1f} / "
                         f"p90 {np.percentile(t_times, 90) * 1e3:.1f} ms, {threads} threads"))
            torch_line = ms_step / t_step
            rows.append(("ratio mindgan / PyTorch (medians)", f"{torch_line:.2f}",
                         f"means: {ms_mean / statistics.mean(t_times):.2f}; <= 1.0 is the goal"))
        except ImportError:
            rows.append(("PyTorch", "not installed", "pip install torch to compare"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak host memory (RSS)", f"{peak:.0f} MiB", ""))

    import mindspore as ms

    print(f"\nmindgan train-step benchmark: device {device}, batch {args.batch_size}, fp32, "
          f"MindSpore {ms.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    width = max(len(r[0]) for r in rows)
    print(f"| {'what'.ljust(width)} | value | notes |\n|{'-' * (width + 2)}|---|---|")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
