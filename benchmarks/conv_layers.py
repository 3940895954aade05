"""Benchmark: each convolution of a family, forward + both gradients, by the three CPU routes.

    python benchmarks/conv_layers.py --model dcgan          # 64x64x3, batch 128
    python benchmarks/conv_layers.py --model dcgan-mnist    # 28x28x1, batch 256

For every Conv2d / Conv2dTranspose of the family's generator and discriminator (at its
training batch and input size): one compiled call computing the layer's output and the
gradients of a weighted sum with respect to its input and weight, timed as the median of
--calls calls after two warm-up calls. Each route runs in its own process: "stock" is
MindSpore's own cells with oneDNN capped at AVX2 (what a CPU with AVX-512 needs for them, see
cpu.choose_cpu_kernels), "matmul" is cpu.matmul_conv's gather + MatMul with oneDNN
uncapped, "onednn" the native oneDNN kernel (cpu.onednn_conv), uncapped. A benchmark, not
a test: the numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_v", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BATCH = {"dcgan": 128, "dcgan-mnist": 256}
ROUTES = {"stock": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MINDGAN_CPU_CONVOLUTIONS": "stock"},
          "matmul": {"ONEDNN_MAX_CPU_ISA": "ALL", "MINDGAN_CPU_CONVOLUTIONS": "matmul"},
          "onednn": {"ONEDNN_MAX_CPU_ISA": "ALL", "MINDGAN_CPU_CONVOLUTIONS": "onednn"}}


def conv_layers(model: str):
    """[(name, cell, input shape [C, H, W])] of the family's convolutions, in network order."""
    import mindspore as ms

    from mindgan.cpu import STANDARD, decide
    from mindgan.models import ModelSpec, build, family
    from mindgan.models.layers import Conv2d, Conv2dTranspose

    preset = family(model).preset
    spec = ModelSpec(model, channels=preset["channels"], image_size=preset["image_size"])
    found = []
    inputs = (np.zeros((2, spec.latent_size), np.float32), np.zeros((2,) + spec.image_shape, np.float32))
    # The layers on this process's route (MINDGAN_CPU_CONVOLUTIONS), their input shapes traced
    # through the same networks built of stock cells (NCHW between every layer).
    for net, standard, x in zip(build(spec, decide("CPU", model)), build(spec, STANDARD), inputs):
        x = ms.Tensor(x)
        if model == "dcgan" and x.ndim == 2:  # its G reshapes z to [N, latent, 1, 1] first
            x = x.reshape(2, -1, 1, 1)
        cells = dict(net.model.cells_and_names())
        for name, cell in standard.model.cells_and_names():
            if isinstance(cell, (Conv2d, Conv2dTranspose)):
                found.append((f"{type(net).__name__[0]}.{name}", cells[name], tuple(x.shape[1:])))
            if name and "." not in name:
                x = cell(x)
    return found


def compiled_gradients(layer, weights):
    """A compiled t -> (sum(layer(t) * weights), (d/dt, d/dweight))."""
    import mindspore as ms

    def loss(t):
        return (layer(t) * weights).sum()

    grad_fn = ms.value_and_grad(loss, 0, layer.trainable_params())

    @ms.jit
    def step(t):
        return grad_fn(t)

    return step


def worker(args) -> None:
    import mindspore as ms
    from mindspore import nn

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    rows = []
    for name, cell, shape in conv_layers(args.model):
        # The family's own layer, on the route MINDGAN_CPU_CONVOLUTIONS chose for this process.
        rng = np.random.default_rng(0)
        x = ms.Tensor(rng.standard_normal((BATCH[args.model],) + shape).astype(np.float32))
        weights = ms.Tensor(rng.standard_normal(cell(x).shape).astype(np.float32))
        step = compiled_gradients(cell, weights)
        for _ in range(2):
            step(x)[1][0].asnumpy()
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            step(x)[1][0].asnumpy()
            times.append(time.perf_counter() - start)
        kind = "Conv2d" if isinstance(cell, nn.Conv2d) else "Conv2dTranspose"
        rows.append({"layer": name, "kind": kind, "input": shape,
                     "out": cell.out_channels, "kernel": cell.kernel_size[0], "stride": cell.stride[0],
                     "ms": float(np.median(times) * 1e3)})
    print(json.dumps(rows), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--model", choices=tuple(BATCH), default="dcgan",
                   help="the family whose convolutions to time, at its tutorial's batch (dcgan 128, "
                        "dcgan-mnist 256; default dcgan)")
    p.add_argument("--calls", type=int, default=5, help="timed calls per layer (default 5)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    results = {}
    for route, env in ROUTES.items():
        cmd = [sys.executable, __file__, "--worker", "--model", args.model, "--calls", str(args.calls)]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=1800)
        lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
        if done.returncode or not lines:
            raise SystemExit(f"{route} worker failed:\n{done.stderr[-3000:]}")
        results[route] = json.loads(lines[-1])
    print(f"{args.model}, batch {BATCH[args.model]}: forward + input and weight gradients, "
          f"median of {args.calls} calls")
    print("| layer | kind | input [C, H, W] | out | k/s | stock, AVX2 (ms) | gather + MatMul (ms) "
          "| native oneDNN (ms) | ratios to stock |")
    print("|---|---|---|---|---|---|---|---|---|")
    total = dict.fromkeys(ROUTES, 0.0)
    for s, m, o in zip(results["stock"], results["matmul"], results["onednn"]):
        for route, row in zip(ROUTES, (s, m, o)):
            total[route] += row["ms"]
        print(f"| {s['layer']} | {s['kind']} | {list(s['input'])} | {s['out']} | {s['kernel']}/{s['stride']} "
              f"| {s['ms']:.1f} | {m['ms']:.1f} | {o['ms']:.1f} | {m['ms'] / s['ms']:.2f}, {o['ms'] / s['ms']:.2f} |")
    print(f"| all | | | | | {total['stock']:.1f} | {total['matmul']:.1f} | {total['onednn']:.1f} "
          f"| {total['matmul'] / total['stock']:.2f}, {total['onednn'] / total['stock']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
